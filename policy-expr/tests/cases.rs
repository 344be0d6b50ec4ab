//! Every construct of the surface, table-driven: expression, expected
//! value. Where APIM's documentation gives an example, it is here as
//! written there (marked "documented").

mod common;

use edgegw_policy_expr::{EXPRESSION_FAILURE, Expression, Value};

fn s(t: &str) -> Value<'static> {
    Value::string(t.to_string())
}
fn i(v: i32) -> Value<'static> {
    Value::Int(v)
}
fn l(v: i64) -> Value<'static> {
    Value::Long(v)
}
fn d(v: f64) -> Value<'static> {
    Value::Double(v)
}
fn b(v: bool) -> Value<'static> {
    Value::Bool(v)
}
fn null() -> Value<'static> {
    Value::Null
}

fn run_table(fixture: &common::Fixture, cases: &[(&str, Value<'static>)]) {
    let ctx = fixture.ctx();
    let mut failed = Vec::new();
    for (text, want) in cases {
        match Expression::parse(text) {
            Err(e) => failed.push(format!("{text}\n    refused: {e}")),
            Ok(expr) => match expr.eval(&ctx) {
                Ok(got) if got == *want => {}
                Ok(got) => failed.push(format!("{text}\n    got {got:?}, want {want:?}")),
                Err(e) => failed.push(format!("{text}\n    failed: {e}")),
            },
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

#[test]
fn documented_examples() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            // documented: the policy-expressions page's examples.
            ("@(true)", b(true)),
            ("@((1+1).ToString())", s("2")),
            ("@(\"Hi There\".Length)", i(8)),
            (
                "@(context.Variables.ContainsKey(\"maxAge\") ? int.Parse((string)context.Variables[\"maxAge\"]) : 3600)",
                i(120),
            ),
            // documented: rate-limit-by-key and set-header.
            (
                "@(context.Request.Headers.GetValueOrDefault(\"Authorization\",\"\").AsJwt()?.Subject)",
                s("alice"),
            ),
            ("@(context.Request.IpAddress)", s("10.1.2.3")),
            ("@(context.Response.StatusCode == 200)", b(false)),
            ("@(context.Response.StatusCode == 503)", b(true)),
            // documented: choose (isMobile).
            (
                "@(context.Request.Headers.GetValueOrDefault(\"User-Agent\",\"\").Contains(\"iPad\") || context.Request.Headers.GetValueOrDefault(\"User-Agent\",\"\").Contains(\"iPhone\"))",
                b(true),
            ),
            (
                "@(context.Variables.GetValueOrDefault<bool>(\"flag\"))",
                b(true),
            ),
            ("@(context.Deployment.Region)", s("West Europe")),
            ("@(context.LastError.Message)", s("Rate limit is exceeded.")),
            (
                "@(context.Request.Body.As<string>(preserveContent: true).Length > 0)",
                b(true),
            ),
            (
                "@(\"Basic \" + Convert.ToBase64String(Encoding.UTF8.GetBytes(\"user:pass\")))",
                s("Basic dXNlcjpwYXNz"),
            ),
        ],
    );
}

#[test]
fn documented_block_with_try_get_value() {
    let mut f = common::Fixture::new();
    f.headers.insert(
        "authorization",
        http::HeaderValue::from_static("dXNlcjpwYXNz"),
    );
    let block = r#"@{
        string[] value;
        if (context.Request.Headers.TryGetValue("Authorization", out value))
        {
            if(value != null && value.Length > 0)
            {
                return Encoding.UTF8.GetString(Convert.FromBase64String(value[0]));
            }
        }
        return null;
    }"#;
    run_table(&f, &[(block, s("user:pass"))]);
    f.headers.remove("authorization");
    run_table(&f, &[(block, null())]);
}

#[test]
fn literals_and_operators() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            ("@(42)", i(42)),
            ("@(3000000000)", l(3_000_000_000)),
            ("@(7L)", l(7)),
            ("@(1.5)", d(1.5)),
            ("@(2e3)", d(2000.0)),
            ("@('x')", Value::Char('x')),
            ("@(\"a\\tb\\u0041\")", s("a\tbA")),
            ("@(@\"c:\\dir \"\"q\"\"\")", s("c:\\dir \"q\"")),
            ("@(null)", null()),
            ("@(false)", b(false)),
            ("@(1 + 2 * 3)", i(7)),
            ("@((1 + 2) * 3)", i(9)),
            ("@(7 / 2)", i(3)),
            ("@(7 % 4)", i(3)),
            ("@(7 / 2.0)", d(3.5)),
            ("@(-5 + 2)", i(-3)),
            ("@(10 - 2 - 3)", i(5)),
            ("@(1 + 2L)", l(3)),
            ("@(\"a\" + 1 + 2)", s("a12")),
            ("@(1 + 2 + \"a\")", s("3a")),
            ("@(\"a\" + null + true)", s("aTrue")),
            ("@(3 > 2 && 2 >= 2 && 1 < 2 && 1 <= 1)", b(true)),
            ("@(3 != 3 || !(1 == 2))", b(true)),
            ("@(\"a\" == \"a\" && \"a\" != \"b\")", b(true)),
            ("@(1 == 1.0)", b(true)),
            ("@(2 > 1 ? \"yes\" : \"no\")", s("yes")),
            ("@(false ? 1 : 2.5)", d(2.5)),
            ("@(true ? 1 : false ? 2 : 3)", i(1)),
            ("@(null ?? \"fallback\")", s("fallback")),
            (
                "@(context.Variables.GetValueOrDefault<string>(\"none\") ?? \"d\")",
                s("d"),
            ),
            ("@((string)null ?? (string)null ?? \"c\")", s("c")),
            ("@(\"a\" == null)", b(false)),
            ("@(int.MaxValue + 1)", i(i32::MIN)),
        ],
    );
}

#[test]
fn context_model() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            ("@(context.Request.Method)", s("POST")),
            ("@(context.Request.Url.Path)", s("/orders/42")),
            ("@(context.Request.Url.Host)", s("api.contoso.com")),
            ("@(context.Request.Url.Scheme)", s("https")),
            ("@(context.Request.Url.Port)", i(443)),
            ("@(context.Request.Url.QueryString)", s("?tier=gold&x=1")),
            (
                "@(context.Request.Url.Query.GetValueOrDefault(\"tier\", \"\"))",
                s("gold"),
            ),
            (
                "@(context.Request.Url.Query.GetValueOrDefault(\"nope\", \"none\"))",
                s("none"),
            ),
            (
                "@(context.Request.Url.ToString())",
                s("https://api.contoso.com/orders/42?tier=gold&x=1"),
            ),
            (
                "@(context.Request.OriginalUrl.ToString())",
                s("http://edge.local:8080/v1/orders/42?tier=gold&x=1"),
            ),
            (
                "@(\"u=\" + context.Request.OriginalUrl)",
                s("u=http://edge.local:8080/v1/orders/42?tier=gold&x=1"),
            ),
            ("@(context.Request.OriginalUrl.Port)", i(8080)),
            ("@(context.Request.MatchedParameters[\"id\"])", s("42")),
            (
                "@(context.Request.MatchedParameters.GetValueOrDefault(\"id\", \"\"))",
                s("42"),
            ),
            (
                "@(context.Request.Headers.GetValueOrDefault(\"X-Tier\"))",
                s("gold"),
            ),
            (
                "@(context.Request.Headers.GetValueOrDefault(\"x-missing\"))",
                null(),
            ),
            (
                "@(context.Request.Headers.GetValueOrDefault(\"Accept\", \"\"))",
                s("text/html,application/json"),
            ),
            ("@(context.Request.Headers[\"Accept\"].Length)", i(2)),
            (
                "@(context.Request.Headers[\"Accept\"][1])",
                s("application/json"),
            ),
            (
                "@(context.Request.Headers.ContainsKey(\"x-tier\"))",
                b(true),
            ),
            (
                "@(context.Request.Headers.ContainsKey(\"bad header\"))",
                b(false),
            ),
            ("@(context.Response.StatusReason)", s("Service Unavailable")),
            (
                "@(context.Response.Headers.GetValueOrDefault(\"Retry-After\", \"0\"))",
                s("5"),
            ),
            ("@(context.Response.Body.As<JArray>().Count)", i(3)),
            ("@(context.Subscription.Id)", s("sub-1")),
            ("@(context.Subscription.Key)", s("k1")),
            ("@(context.Subscription.Name)", s("Gold subscription")),
            (
                "@(context.Subscription.PrimaryKey + context.Subscription.SecondaryKey)",
                s("k1k2"),
            ),
            ("@(context.Product.Name)", s("Starter")),
            ("@(context.Product.Id)", s("starter")),
            (
                "@(context.Api.Id + \"|\" + context.Api.Name + \"|\" + context.Api.Path)",
                s("orders|Orders API|orders"),
            ),
            (
                "@(context.Api.ServiceUrl.ToString())",
                s("https://backend.internal/api"),
            ),
            ("@(context.Api.ServiceUrl.Host)", s("backend.internal")),
            (
                "@(context.Operation.Id + context.Operation.Name + context.Operation.Method + context.Operation.UrlTemplate)",
                s("get-orderGetOrderGET/orders/{id}"),
            ),
            ("@(context.User.Email)", s("ann@example.com")),
            (
                "@(context.User.FirstName + \" \" + context.User.LastName)",
                s("Ann Lee"),
            ),
            ("@(context.User.Id)", s("u1")),
            ("@(context.LastError.Source)", s("rate-limit-by-key")),
            ("@(context.LastError.Reason)", s("RateLimitExceeded")),
            (
                "@(context.LastError.Scope + \"/\" + context.LastError.Section)",
                s("api/inbound"),
            ),
            ("@(context.LastError.Path)", s("rate-limit-by-key[1]")),
            ("@(context.LastError.PolicyId)", s("")),
            ("@(context.Deployment.ServiceName)", s("contoso-apim")),
            ("@(context.Deployment.GatewayId)", s("edge-1")),
            (
                "@(context.RequestId.ToString())",
                s("01234567-89ab-cdef-0123-456789abcdef"),
            ),
            (
                "@(context.RequestId.ToString(\"N\"))",
                s("0123456789abcdef0123456789abcdef"),
            ),
            (
                "@(context.Timestamp.ToString(\"o\"))",
                s("2026-12-05T19:46:40.0000000Z"),
            ),
            ("@(context.Elapsed.TotalMilliseconds)", d(1500.0)),
            ("@(context.Elapsed.ToString())", s("00:00:01.5000000")),
            ("@((string)context.Variables[\"maxAge\"])", s("120")),
            ("@((int)context.Variables[\"count\"] + 1)", i(4)),
            (
                "@(context.Variables.GetValueOrDefault<int>(\"count\", 0))",
                i(3),
            ),
            (
                "@(context.Variables.GetValueOrDefault<int>(\"nope\", 9))",
                i(9),
            ),
            ("@(context.Variables.ContainsKey(\"nope\"))", b(false)),
            ("@(context.Variables.Count)", i(6)),
        ],
    );
}

#[test]
fn null_propagation() {
    let mut f = common::Fixture::new();
    f.subscription = false;
    f.last_error = false;
    run_table(
        &f,
        &[
            ("@(context.Subscription?.Id)", null()),
            (
                "@(context.Subscription?.Id ?? \"anonymous\")",
                s("anonymous"),
            ),
            ("@(context.LastError?.Source ?? \"none\")", s("none")),
            ("@(context.Subscription?.Name.Length)", null()),
            ("@(\"x\".AsJwt()?.Subject)", null()),
            (
                "@(\"x\".AsJwt()?.Claims.GetValueOrDefault(\"a\", \"b\"))",
                null(),
            ),
            (
                "@(context.Request.Headers.GetValueOrDefault(\"nope\")?.Length ?? -1)",
                i(-1),
            ),
        ],
    );
}

#[test]
fn strings() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            ("@(\"Hello\".ToLower())", s("hello")),
            ("@(\"Hello\".ToUpper())", s("HELLO")),
            ("@(\"Hello\".ToUpperInvariant())", s("HELLO")),
            ("@(\"  a b  \".Trim())", s("a b")),
            ("@(\"//a//\".TrimStart('/'))", s("a//")),
            ("@(\"//a//\".TrimEnd('/'))", s("//a")),
            ("@(\"x-a-x\".Trim('x', '-'))", s("a")),
            ("@(\"Bearer abc\".StartsWith(\"Bearer \"))", b(true)),
            (
                "@(\"Bearer abc\".StartsWith(\"bearer \", StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            ("@(\"Bearer abc\".StartsWith(\"bearer \"))", b(false)),
            (
                "@(\"file.JSON\".EndsWith(\".json\", StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            ("@(\"file.JSON\".EndsWith(\".json\"))", b(false)),
            ("@(\"abcdef\".Contains(\"cd\"))", b(true)),
            (
                "@(\"abcdef\".Contains(\"CD\", StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            (
                "@(\"GET\".Equals(\"get\", StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            ("@(\"GET\".Equals(\"get\"))", b(false)),
            (
                "@(context.Request.Method.Equals(\"post\", StringComparison.InvariantCultureIgnoreCase))",
                b(true),
            ),
            (
                "@(string.Equals(\"Straße\", \"STRASSE\", StringComparison.OrdinalIgnoreCase))",
                b(false),
            ),
            (
                "@(\"ÄBC\".Equals(\"äbc\", StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            ("@(\"a,b,,c\".Split(',').Length)", i(4)),
            ("@(\"a,b;c\".Split(',', ';')[2])", s("c")),
            ("@(\"a--b--c\".Split(\"--\")[1])", s("b")),
            ("@(\"Bearer xyz\".Split(' ')[1])", s("xyz")),
            ("@(\"abcdef\".Substring(2))", s("cdef")),
            ("@(\"abcdef\".Substring(1, 3))", s("bcd")),
            ("@(\"a-b-c\".Replace(\"-\", \"+\"))", s("a+b+c")),
            ("@(\"a-b-c\".Replace('-', '_'))", s("a_b_c")),
            ("@(\"abcabc\".IndexOf(\"c\"))", i(2)),
            ("@(\"abcabc\".IndexOf('z'))", i(-1)),
            (
                "@(\"abcABC\".IndexOf(\"B\", StringComparison.OrdinalIgnoreCase))",
                i(1),
            ),
            ("@(\"abcabc\".LastIndexOf(\"b\"))", i(4)),
            ("@(\"héllo\".Length)", i(5)),
            ("@(\"abc\"[1])", Value::Char('b')),
            ("@(\"7\".PadLeft(3, '0'))", s("007")),
            ("@(string.Format(\"{0}-{1}\", \"a\", 2))", s("a-2")),
            ("@(string.Format(\"{{{0}}}\", \"x\"))", s("{x}")),
            // Interpolated strings mean what string.Format does.
            ("@($\"id={context.Subscription.Id}!\")", s("id=sub-1!")),
            (
                "@($\"{{{1 + 2}}} {\"a\\\"b\"} {(true ? 1 : 2)}\")",
                s("{3} a\"b 1"),
            ),
            ("@($\"[{7,3}][{7:D3}]\\t\")", s("[  7][007]\t")),
            ("@($@\"a\"\"{\"b\".ToUpper()}\\n\")", s("a\"B\\n")),
            ("@($\"plain {{x}}\")", s("plain {x}")),
            (
                "@($\"{context.Request.Headers.GetValueOrDefault(\"a\", \"b\")}\".Length)",
                i(1),
            ),
            ("@(String.Concat(\"a\", \"b\", 3))", s("ab3")),
            (
                "@(String.Concat(context.Subscription.Id, \"-x\"))",
                s("sub-1-x"),
            ),
            ("@(string.Join(\",\", \"a\", \"b\"))", s("a,b")),
            // Split's overloads with a count and StringSplitOptions (.NET's results).
            (
                "@(\"a,,b\".Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Length)",
                i(2),
            ),
            (
                "@(\"a, b ,c\".Split(',', StringSplitOptions.TrimEntries)[1])",
                s("b"),
            ),
            (
                "@(\"x/model/gpt/4\".Split(new[] { \"model/\" }, 2, StringSplitOptions.None)[1])",
                s("gpt/4"),
            ),
            ("@(\"a,b,c\".Split(',', 2)[1])", s("b,c")),
            (
                "@(\",a,,b\".Split(new char[] { ',' }, 2, StringSplitOptions.RemoveEmptyEntries)[1])",
                s(",b"),
            ),
            (
                "@(\"a;;b\".Split(new string[] { \";;\" }, StringSplitOptions.None).Length)",
                i(2),
            ),
            (
                "@(string.Join(\"|\", context.Request.Headers[\"Accept\"]))",
                s("text/html|application/json"),
            ),
            ("@(string.IsNullOrEmpty(\"\"))", b(true)),
            (
                "@(string.IsNullOrEmpty(context.Request.Headers.GetValueOrDefault(\"nope\")))",
                b(true),
            ),
            ("@(string.IsNullOrWhiteSpace(\"  \"))", b(true)),
            ("@(string.IsNullOrWhiteSpace(\" x \"))", b(false)),
            ("@(string.Empty.Length)", i(0)),
            ("@(42.ToString())", s("42")),
            ("@(true.ToString())", s("True")),
            ("@(1.5.ToString())", s("1.5")),
        ],
    );
}

#[test]
fn parsing_and_conversion() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            ("@(int.Parse(\"42\") + 1)", i(43)),
            ("@(int.Parse(\" 7 \"))", i(7)),
            ("@(long.Parse(\"9000000000\"))", l(9_000_000_000)),
            ("@(bool.Parse(\"True\"))", b(true)),
            ("@(double.Parse(\"2.5\"))", d(2.5)),
            (
                "@{ int n; if (int.TryParse(\"12\", out n)) { return n * 2; } return -1; }",
                i(24),
            ),
            (
                "@{ if (int.TryParse(\"x\", out var n)) { return n; } return n - 1; }",
                i(-1),
            ),
            (
                "@{ return long.TryParse(\"5\", out long v) ? v : 0L; }",
                l(5),
            ),
            (
                "@{ bool.TryParse(\"false\", out var f); return f; }",
                b(false),
            ),
            (
                "@(Convert.ToBase64String(Encoding.UTF8.GetBytes(\"hi\")))",
                s("aGk="),
            ),
            (
                "@(Encoding.UTF8.GetString(Convert.FromBase64String(\"aGk=\")))",
                s("hi"),
            ),
            ("@(Encoding.UTF8.GetBytes(\"hé\").Length)", i(3)),
            ("@(Convert.ToInt32(\"12\"))", i(12)),
            ("@(Convert.ToInt32(2.5))", i(2)),
            ("@(Convert.ToString(5))", s("5")),
            ("@((int)2.9)", i(2)),
            ("@((double)3)", d(3.0)),
            ("@((long)3 * 2)", l(6)),
        ],
    );
}

#[test]
fn dates_guids_math() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(context.Timestamp.ToString(\"yyyy-MM-dd\"))",
                s("2026-12-05"),
            ),
            (
                "@(context.Timestamp.ToString(\"yyyy-MM-ddTHH:mm:ssZ\"))",
                s("2026-12-05T19:46:40Z"),
            ),
            (
                "@(context.Timestamp.ToString(\"s\"))",
                s("2026-12-05T19:46:40"),
            ),
            (
                "@(context.Timestamp.ToString(\"r\"))",
                s("Sat, 05 Dec 2026 19:46:40 GMT"),
            ),
            (
                "@(context.Timestamp.ToString(\"dd MMM yy, h:mm tt\"))",
                s("05 Dec 26, 7:46 PM"),
            ),
            (
                "@(context.Timestamp.AddHours(5).ToString(\"u\"))",
                s("2026-12-06 00:46:40Z"),
            ),
            ("@(context.Timestamp.AddDays(-1).Day)", i(4)),
            ("@(context.Timestamp.Year)", i(2026)),
            (
                "@((context.Timestamp.AddMinutes(90) - context.Timestamp).TotalHours)",
                d(1.5),
            ),
            (
                "@(context.Timestamp.Subtract(context.Timestamp.AddSeconds(-30)).TotalSeconds)",
                d(30.0),
            ),
            (
                "@((context.Timestamp + TimeSpan.FromMinutes(1)).Minute)",
                i(47),
            ),
            (
                "@(DateTime.UtcNow > context.Timestamp.AddDays(-3650))",
                b(true),
            ),
            ("@(DateTime.UtcNow.ToString(\"o\").Length)", i(28)),
            ("@(Guid.NewGuid().ToString().Length)", i(36)),
            ("@(Guid.NewGuid() != Guid.NewGuid())", b(true)),
            ("@(Guid.NewGuid().ToString()[14])", Value::Char('4')),
            ("@(Math.Min(3, 5))", i(3)),
            ("@(Math.Max(3, 5.5))", d(5.5)),
            ("@(Math.Abs(-4))", i(4)),
            ("@(Math.Round(2.5))", d(2.0)),
            ("@(Math.Round(2.25, 1))", d(2.2)),
            ("@(Math.Round(3.5))", d(4.0)),
            ("@(Math.Floor(2.7))", d(2.0)),
            ("@(Math.Ceiling(2.1))", d(3.0)),
            ("@(Math.Pow(2, 10))", d(1024.0)),
        ],
    );
}

#[test]
fn json() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(context.Request.Body.As<JObject>()[\"customer\"][\"name\"].ToString())",
                s("Ann"),
            ),
            (
                "@((string)context.Request.Body.As<JObject>(preserveContent: true)[\"customer\"][\"name\"])",
                s("Ann"),
            ),
            (
                "@((int)context.Request.Body.As<JObject>()[\"customer\"][\"id\"])",
                i(7),
            ),
            (
                "@(context.Request.Body.As<JObject>()[\"customer\"].Value<int>(\"id\"))",
                i(7),
            ),
            (
                "@(context.Request.Body.As<JObject>()[\"items\"][1].Value<string>(\"sku\"))",
                s("b"),
            ),
            (
                "@(context.Request.Body.As<JObject>()[\"items\"].Count)",
                i(2),
            ),
            (
                "@(context.Request.Body.As<JObject>()[\"missing\"] == null)",
                b(true),
            ),
            (
                "@(context.Request.Body.As<JObject>().ContainsKey(\"items\"))",
                b(true),
            ),
            (
                "@(JObject.Parse(\"{\\\"a\\\":1}\").ToString(Formatting.None))",
                s("{\"a\":1}"),
            ),
            (
                "@(JObject.Parse(\"{\\\"a\\\":1}\").ToString())",
                s("{\n  \"a\": 1\n}"),
            ),
            ("@(JArray.Parse(\"[1,2,3]\").Count)", i(3)),
            ("@(JArray.Parse(\"[1,2,3]\")[0].Value<int>() + 1)", i(2)),
            (
                "@(JArray.Parse(\"[3,1,2]\").Select(x => (int)x).OrderBy(x => x).First())",
                i(1),
            ),
            (
                "@(context.Request.Body.As<JObject>()[\"items\"].Where(x => (int)x[\"qty\"] > 3).Count())",
                i(1),
            ),
            (
                "@(((JObject)context.Variables[\"payload\"])[\"a\"][\"b\"][1].ToString())",
                s("2"),
            ),
            (
                "@(context.Request.Body.As<string>().StartsWith(\"{\"))",
                b(true),
            ),
            // Built with `new`, as real documents do.
            (
                "@(new JObject(new JProperty(\"id\", 7), new JProperty(\"name\", context.Request.Method), new JProperty(\"ok\", true), new JProperty(\"none\", null)).ToString(Formatting.None))",
                s("{\"id\":7,\"name\":\"POST\",\"ok\":true,\"none\":null}"),
            ),
            ("@(new JObject().ToString(Formatting.None))", s("{}")),
            (
                "@(new JArray(1, \"a\", new JObject(new JProperty(\"b\", 2.5))).ToString(Formatting.None))",
                s("[1,\"a\",{\"b\":2.5}]"),
            ),
            ("@(new JArray(\"a,b\".Split(','))[1].ToString())", s("b")),
            (
                "@(new JObject(new JProperty(\"items\", new JArray(1, 2)))[\"items\"].Count)",
                i(2),
            ),
            ("@(\"a;b,c\".Split(new char[] { ';', ',' }).Length)", i(3)),
            (
                "@(string.Join(\"-\", new string[] { \"x\", \"y\" }))",
                s("x-y"),
            ),
            ("@(new[] { 3, 1, 2 }.OrderBy(x => x).First())", i(1)),
            (
                "@(BitConverter.ToString(System.Security.Cryptography.SHA256.Create().ComputeHash(Encoding.UTF8.GetBytes(\"abc\"))).Replace(\"-\", \"\").ToLowerInvariant())",
                s("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ),
            (
                "@(BitConverter.ToString(Encoding.UTF8.GetBytes(\"\\n:\")))",
                s("0A-3A"),
            ),
            (
                "@{ var r = new Random(); var a = r.Next(3, 5); var b = new System.Random(context.RequestId.GetHashCode()).Next(2); var d = r.NextDouble(); return a >= 3 && a < 5 && b >= 0 && b < 2 && d >= 0 && d < 1 && r.Next(7, 7) == 7; }",
                b(true),
            ),
            // System.Security.Cryptography as SAS-token, PKCE and signing
            // samples use it (digests from Python's hashlib and hmac).
            (
                "@(Convert.ToBase64String(new System.Security.Cryptography.HMACSHA256(Encoding.UTF8.GetBytes(\"Jefe\")).ComputeHash(Encoding.UTF8.GetBytes(\"what do ya want for nothing?\"))))",
                s("W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
            ),
            (
                "@{ using (var sha256 = System.Security.Cryptography.SHA256.Create()) { var hash = sha256.ComputeHash(System.Text.Encoding.UTF8.GetBytes(\"abc\")); return Convert.ToBase64String(hash); } }",
                s("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="),
            ),
            (
                "@{ System.Security.Cryptography.HMACSHA1 hasher = new System.Security.Cryptography.HMACSHA1 { Key = Encoding.UTF8.GetBytes(\"k\") }; byte[] sig = hasher.ComputeHash(Encoding.UTF8.GetBytes(\"abc\")); return Convert.ToBase64String(sig); }",
                s("+b7wkf4A2fUShZODbbqZ4ZPwgXQ="),
            ),
            (
                "@{ string[] allowed = { \"GET\", \"POST\", }; int[] none = {}; return allowed.Contains(context.Request.Method) && none.Length == 0; }",
                b(true),
            ),
            // Changing JSON in a variable, as the AI-gateway samples do.
            (
                "@{ var body = JObject.Parse(\"{\\\"model\\\":\\\"a\\\",\\\"messages\\\":[{\\\"role\\\":\\\"user\\\"}]}\"); body[\"model\"] = \"gpt-4o\"; body[\"messages\"][0][\"role\"] = \"system\"; body[\"stream_options\"] = new JObject(new JProperty(\"include_usage\", true)); body.Add(\"n\", 2); body.Add(new JProperty(\"p\", 1)); body[\"messages\"].Add(new JObject(new JProperty(\"role\", \"x\"))); body.Remove(\"n\"); body[\"model\"].Remove(); return body.ToString(Formatting.None); }",
                s(
                    "{\"messages\":[{\"role\":\"system\"},{\"role\":\"x\"}],\"stream_options\":{\"include_usage\":true},\"p\":1}",
                ),
            ),
            (
                "@{ JArray a = new JArray(1); a[0] = context.Request.Method; a.Add(2.5); return a.ToString(Formatting.None); }",
                s("[\"POST\",2.5]"),
            ),
            (
                "@{ var a = JObject.Parse(\"{}\"); try { a[\"x\"][\"y\"] = 1; return \"no\"; } catch (Exception e) { return e.Message; } }",
                s("Object reference not set to an instance of an object."),
            ),
        ],
    );
}

#[test]
fn qualified_names_and_url_html_encoding() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(System.Text.Encoding.UTF8.GetString(System.Convert.FromBase64String(\"aGk=\")))",
                s("hi"),
            ),
            (
                "@(context.Request.Method.Equals(\"post\", System.StringComparison.OrdinalIgnoreCase))",
                b(true),
            ),
            (
                "@(System.Net.WebUtility.UrlEncode(\"a b&c\"))",
                s("a+b%26c"),
            ),
            (
                "@(System.Net.WebUtility.UrlDecode(\"a+b%26c\"))",
                s("a b&c"),
            ),
            ("@(WebUtility.HtmlEncode(\"<b>'\"))", s("&lt;b&gt;&#39;")),
            ("@(System.Uri.EscapeDataString(\"a b/c\"))", s("a%20b%2Fc")),
            ("@(Uri.UnescapeDataString(\"a%20b\"))", s("a b")),
            ("@(System.Net.WebUtility.UrlEncode(null) == null)", b(true)),
        ],
    );
}

#[test]
fn jwt() {
    let f = common::Fixture::new();
    let jwt = "context.Request.Headers.GetValueOrDefault(\"Authorization\",\"\").AsJwt()";
    let cases: Vec<(String, Value<'static>)> = vec![
        (format!("@({jwt}.Issuer)"), s("https://login.example")),
        (format!("@({jwt}.Id)"), s("id-9")),
        (format!("@({jwt}.Algorithm)"), s("RS256")),
        (format!("@({jwt}.Audiences.Contains(\"api://orders\"))"), b(true)),
        (format!("@({jwt}.Audiences.Length)"), i(2)),
        (format!("@({jwt}.ExpirationTime.Value.Year)").replace(".Value", ""), i(2033)),
        (format!("@({jwt}.ExpirationTime > DateTime.UtcNow)"), b(true)),
        (format!("@({jwt}.Claims.GetValueOrDefault(\"tid\", \"\"))"), s("t-1")),
        (format!("@({jwt}.Claims.GetValueOrDefault(\"roles\", \"\"))"), s("admin,reader")),
        (format!("@({jwt}.Claims.GetValueOrDefault(\"nope\", \"none\"))"), s("none")),
        (format!("@({jwt}.Claims[\"roles\"].Contains(\"admin\"))"), b(true)),
        (format!("@({jwt}.Claims.GetValueOrDefault(\"age\", \"\"))"), s("42")),
        (format!("@({jwt}?.Claims.GetValueOrDefault(\"scp\", \"\").Split(' ').Contains(\"write\"))"), b(true)),
        (format!("@({jwt}.Claims.Any(c => c.Key == \"tid\"))"), b(true)),
        ("@(((Jwt)context.Variables[\"jwt\"]).Subject)".into(), s("alice")),
        ("@(context.Variables.GetValueOrDefault<Jwt>(\"jwt\").Claims.GetValueOrDefault(\"tid\", \"\"))".into(), s("t-1")),
        (
            "@{ Jwt jwt; if (context.Request.Headers.GetValueOrDefault(\"Authorization\", \"\").TryParseJwt(out jwt)) { return jwt.Subject; } return \"anon\"; }".into(),
            s("alice"),
        ),
        ("@{ return \"junk\".TryParseJwt(out var t) ? t.Subject : \"anon\"; }".into(), s("anon")),
        (
            "@(String.Concat(context.Request.Headers.GetValueOrDefault(\"X-Tier\", \"\"), \":\", context.Request.Headers.GetValueOrDefault(\"Authorization\", \"\").AsJwt()?.Claims.GetValueOrDefault(\"tid\", \"\")))".into(),
            s("gold:t-1"),
        ),
    ];
    let table: Vec<(&str, Value<'static>)> =
        cases.iter().map(|(t, v)| (t.as_str(), v.clone())).collect();
    run_table(&f, &table);
}

/// A response `send-request` kept in a variable, read as APIM's samples
/// read their token answers.
#[test]
fn kept_response() {
    let f = common::Fixture::new();
    let r = "((IResponse)context.Variables[\"tokenResponse\"])";
    let cases: Vec<(String, Value<'static>)> = vec![
        (format!("@({r}.StatusCode)"), i(200)),
        (format!("@({r}.StatusReason)"), s("OK")),
        (format!("@({r}.StatusCode == 200 && {r}.Body != null)"), b(true)),
        (
            format!("@({r}.Body.As<JObject>()[\"access_token\"].ToString())"),
            s("abc"),
        ),
        (
            format!("@((int){r}.Body.As<JObject>(preserveContent: true)[\"expires_in\"])"),
            i(3599),
        ),
        (format!("@({r}.Body.As<string>().Length)"), i(40)),
        (
            format!("@({r}.Headers.GetValueOrDefault(\"Content-Type\", \"\"))"),
            s("application/json"),
        ),
        (format!("@({r}.Headers.Any(h => h.Key == \"content-type\"))"), b(true)),
        (
            "@(context.Variables.GetValueOrDefault<IResponse>(\"tokenResponse\").StatusCode)"
                .into(),
            i(200),
        ),
        (
            "@{ var resp = (IResponse)context.Variables[\"tokenResponse\"]; var body = resp.Body.As<JObject>(); return (string)body[\"access_token\"]; }".into(),
            s("abc"),
        ),
    ];
    let table: Vec<(&str, Value<'static>)> =
        cases.iter().map(|(t, v)| (t.as_str(), v.clone())).collect();
    run_table(&f, &table);
}

/// `Regex` as real documents use it, with .NET's outcomes.
#[test]
fn regex() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(Regex.IsMatch(context.Request.Url.Path, @\"^/ORDERS/\\d+$\", RegexOptions.IgnoreCase))",
                b(true),
            ),
            (
                "@(Regex.IsMatch(context.Request.Url.Path, @\"^/ORDERS\"))",
                b(false),
            ),
            (
                "@(Regex.Match(\"public, max-age=60\", @\"max-age=(?<maxAge>\\d+)\").Groups[\"maxAge\"]?.Value)",
                s("60"),
            ),
            (
                "@(Regex.Match(\"a=1&idSession=xyz&b\", @\"idSession=([^&]+)\").Groups[1].Value)",
                s("xyz"),
            ),
            ("@(Regex.Match(\"abc\", \"z\").Success)", b(false)),
            ("@(Regex.Match(\"abc\", \"b.\").Value)", s("bc")),
            (
                "@(System.Text.RegularExpressions.Regex.Replace(\"a@b c@d\", @\"(\\w)@(\\w)\", \"$2.$1\"))",
                s("b.a d.c"),
            ),
            // A pattern made per request is compiled when it runs.
            (
                "@{ var pattern = \"^\" + \"gold\" + \"$\"; return Regex.IsMatch(context.Request.Headers.GetValueOrDefault(\"X-Tier\", \"\"), pattern, RegexOptions.IgnoreCase, TimeSpan.FromMilliseconds(50)); }",
                b(true),
            ),
        ],
    );
}

/// `Variables.GetValueOrDefault(name, default)` is of the default's type,
/// as C# infers it.
#[test]
fn variable_defaults_give_their_type() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(context.Variables.GetValueOrDefault(\"maxAge\", \"\").Length)",
                i(3),
            ),
            (
                "@(context.Variables.GetValueOrDefault(\"nope\", \"a,b\").Contains(\",\"))",
                b(true),
            ),
            (
                "@(context.Variables.GetValueOrDefault(\"count\", 0) + 1)",
                i(4),
            ),
            (
                "@(context.Variables.GetValueOrDefault(\"nope\", 5) * 2)",
                i(10),
            ),
        ],
    );
}

/// `try`/`catch` and `foreach`, as real documents write them.
#[test]
fn try_catch_and_foreach() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@{ try { var json = JObject.Parse(\"{oops\"); return (string)json[\"id\"]; } catch { return \"fallback\"; } }",
                s("fallback"),
            ),
            (
                "@{ try { return int.Parse(\"x\").ToString(); } catch (Exception e) { return e.Message; } }",
                s("The input string 'x' was not in a correct format."),
            ),
            (
                "@{ string r = \"none\"; try { r = (string)context.Variables[\"maxAge\"]; } catch (Exception) { r = \"failed\"; } return r; }",
                s("120"),
            ),
            (
                "@{ var names = \"\"; foreach (var h in context.Request.Headers) { if (h.Key.StartsWith(\"x-\")) { names = names + h.Key + \";\"; } } return names; }",
                s("x-tier;"),
            ),
            (
                "@{ int sum = 0; foreach (int n in new int[] { 1, 2, 3 }) { sum = sum + n; } return sum; }",
                i(6),
            ),
            (
                "@{ int sum = 10; int count = 0; foreach (var n in new[] { 1, 2, 3 }) { sum += n; sum -= 1; count++; } sum *= 2; count--; return sum + count * 100; }",
                i(226),
            ),
            (
                "@{ var text = \"a\"; text += \"b\" + context.Request.Method; return text; }",
                s("abPOST"),
            ),
            (
                "@{ foreach (var p in ((JObject)context.Variables[\"payload\"])) { if (p.Key == \"name\") { return (string)p.Value; } } return \"none\"; }",
                s("x"),
            ),
        ],
    );
}

#[test]
fn linq() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            (
                "@(context.Request.Headers.Where(h => h.Key.StartsWith(\"x-\")).Count())",
                i(1),
            ),
            (
                "@(context.Request.Headers.Any(h => h.Key == \"x-tier\"))",
                b(true),
            ),
            (
                "@(context.Request.Headers.All(h => h.Value.Length > 0))",
                b(true),
            ),
            (
                "@(context.Request.Headers.Count(h => h.Key.Contains(\"a\")))",
                i(3),
            ),
            (
                "@(context.Request.Headers[\"Accept\"].First())",
                s("text/html"),
            ),
            (
                "@(context.Request.Headers[\"Accept\"].FirstOrDefault(a => a.Contains(\"json\")))",
                s("application/json"),
            ),
            (
                "@(context.Request.Headers[\"Accept\"].FirstOrDefault(a => a == \"x\") ?? \"none\")",
                s("none"),
            ),
            (
                "@(string.Join(\",\", context.Request.Headers[\"Accept\"].Select(a => a.ToUpper())))",
                s("TEXT/HTML,APPLICATION/JSON"),
            ),
            (
                "@(string.Join(\",\", \"b,c,a\".Split(',').OrderBy(x => x)))",
                s("a,b,c"),
            ),
            (
                "@(string.Join(\",\", \"b,c,a\".Split(',').OrderByDescending(x => x)))",
                s("c,b,a"),
            ),
            ("@(\"a,b\".Split(',').Contains(\"b\"))", b(true)),
            ("@(\"a,b\".Split(',').Any())", b(true)),
            (
                "@(context.Request.Url.Query.Any(q => q.Key == \"x\" && q.Value == \"1\"))",
                b(true),
            ),
            (
                "@(context.Request.Headers.Select(h => h.Key).Contains(\"accept\"))",
                b(true),
            ),
            (
                "@(context.Request.Headers.ContainsKey(\"Accept\") && context.Request.Headers[\"Accept\"].Any(a => a.EndsWith(\"json\")))",
                b(true),
            ),
        ],
    );
}

#[test]
fn blocks() {
    let f = common::Fixture::new();
    run_table(
        &f,
        &[
            ("@{ return 1; }", i(1)),
            ("@{ var x = 2; x = x * 3; return x; }", i(6)),
            ("@{ string s = \"a\"; s = s + \"b\"; return s; }", s("ab")),
            (
                "@{ var tier = context.Request.Headers.GetValueOrDefault(\"X-Tier\", \"\"); if (tier == \"gold\") { return 100; } else if (tier == \"silver\") { return 50; } else { return 10; } }",
                i(100),
            ),
            ("@{ if (false) return \"a\"; return \"b\"; }", s("b")),
            (
                "@{ // a comment\n var a = 1; /* another */ return a + 1; }",
                i(2),
            ),
            (
                "@{ var body = context.Request.Body.As<JObject>(preserveContent: true); var name = (string)body[\"customer\"][\"name\"]; return name.ToUpper(); }",
                s("ANN"),
            ),
            (
                "@{ var jwt = (Jwt)context.Variables[\"jwt\"]; var roles = jwt.Claims[\"roles\"]; return roles.Any(r => r == \"admin\") ? \"admin\" : \"user\"; }",
                s("admin"),
            ),
            (
                "@{ var parts = context.Request.Url.Path.Split('/'); return parts[parts.Length - 1]; }",
                s("42"),
            ),
            (
                "@{ var n = 0; if (true) { var m = 5; n = m; } return n; }",
                i(5),
            ),
        ],
    );
}

/// Load-time refusals: line, column, the expression and what to write.
#[test]
fn refusals() {
    let cases: &[(&str, (u32, u32), &str)] = &[
        (
            "@(context.Foo)",
            (1, 3),
            "`context.Foo` is not part of the context model; known members: Request, Response",
        ),
        (
            "@(context.Request.Methd)",
            (1, 3),
            "known members: Method, Url",
        ),
        (
            "@(context.Request.Method > 3)",
            (1, 3),
            "cannot compare string with int",
        ),
        (
            "@{ try { return 1; } finally { } }",
            (1, 22),
            "`try` needs its `catch`",
        ),
        (
            "@{ foreach (var c in 5) { } return 1; }",
            (1, 22),
            "int cannot be enumerated",
        ),
        (
            "@(Regex.IsMatch(\"a\", \"(?<=x)a\"))",
            (1, 3),
            "look-around, including look-ahead and look-behind, is not supported",
        ),
        (
            "@(Regex.Match(\"a\", \"a\").Groups[true])",
            (1, 32),
            "a group is found by its number or name, not bool",
        ),
        ("@($\"a}\")", (1, 3), "write `{{` and `}}` for braces"),
        ("@($\"a{ }\")", (1, 3), "an empty hole"),
        ("@($\"a{x ? 1 : 2}\")", (1, 3), "starts its format"),
        ("@($\"a{1 2}\")", (1, 9), "in parentheses"),
        (
            "@(new Uri(\"http://a/\"))",
            (1, 3),
            "new JObject(new JProperty",
        ),
        ("@(new Random(\"x\"))", (1, 3), "a seed (int)"),
        ("@(new Random().Next(1, 2, 3))", (1, 3), "Next"),
        (
            "@(new HMACSHA256().ComputeHash(Encoding.UTF8.GetBytes(\"x\")))",
            (1, 3),
            "takes its key",
        ),
        (
            "@(new SHA256(\"x\"))",
            (1, 3),
            "is made with SHA256.Create()",
        ),
        (
            "@(SHA256.Create().ComputeHash(\"abc\"))",
            (1, 31),
            "encode it: Encoding.UTF8.GetBytes(text)",
        ),
        (
            "@(new JObject(\"a\"))",
            (1, 15),
            "new JObject(new JProperty",
        ),
        (
            "@(new JArray(new JProperty(\"a\", 1)))",
            (1, 14),
            "new JObject(...) first",
        ),
        ("@(new[] { 1, \"a\" })", (1, 14), "new string[]"),
        ("@(System.IO.File)", (1, 3), "outside the supported surface"),
        (
            "@(new JProperty(\"a\", context.Request))",
            (1, 22),
            "use one of its members",
        ),
        (
            "@(context.Request.Headers.Count += 1)",
            (1, 33),
            "`+=` updates a variable only as a statement",
        ),
        (
            "@{ var n = 1; n += \"x\"; return n; }",
            (1, 15),
            "this is string where int is expected",
        ),
        (
            "@{ while (true) { } return 1; }",
            (1, 4),
            "`while` statements are outside the supported surface",
        ),
        (
            "@{ var x = 1; }",
            (1, 4),
            "not all code paths return a value",
        ),
        (
            "@{ if (true) { return 1; } }",
            (1, 4),
            "not all code paths return a value",
        ),
        (
            "@(context.Variables[\"x\"].Length)",
            (1, 3),
            "cast it first",
        ),
        ("@(1 +)", (1, 5), "ends too early"),
        (
            "@(\"a\" & \"b\")",
            (1, 7),
            "operator is outside the supported surface",
        ),
        ("@(x)", (1, 3), "`x` is not known"),
        ("@(context.Request)", (1, 3), "use one of its members"),
        ("@(\"a\".Foo())", (1, 3), "string has no method `Foo`"),
        ("@(int.Parse(1))", (1, 13), "int where string is expected"),
        (
            "@(context.Request.Headers.Where(h => h.Key))",
            (1, 3),
            "must give a bool",
        ),
        (
            "@{ return 1; return \"a\"; }",
            (1, 14),
            "returns string where another return gives int",
        ),
        ("@(\"abc\"", (1, 1), "not closed"),
        ("@(\"\\q\")", (1, 3), "unknown escape"),
        ("@(1) + 2", (1, 1), "not closed"),
        ("@(context.Request.Body.As<int>())", (1, 3), "As<string>()"),
        // JSON is changed only where no other name shares it.
        (
            "@{ var a = JObject.Parse(\"{}\"); var b = a; b[\"x\"] = 1; return a.ToString(); }",
            (1, 41),
            "`b` is changed below but takes JSON that something else holds",
        ),
        (
            "@{ var a = JObject.Parse(\"{}\"); var b = a[\"x\"]; a[\"x\"] = 1; return b.ToString(); }",
            (1, 41),
            "`b` would share the JSON of `a`, which is changed",
        ),
        (
            "@{ var a = JArray.Parse(\"[{}]\"); foreach (var x in a) { x[\"y\"] = 1; } return a.ToString(); }",
            (1, 34),
            "`x` is a foreach variable",
        ),
        (
            "@{ var body = (JObject)context.Variables[\"payload\"]; body[\"x\"] = 1; return body.ToString(); }",
            (1, 15),
            "takes JSON that something else holds",
        ),
        (
            "@{ context.Request.Body.As<JObject>()[\"x\"] = 1; return 1; }",
            (1, 4),
            "only JSON held in a local variable can be changed",
        ),
        (
            "@{ var s = \"a\"; s[0] = 'b'; return s; }",
            (1, 17),
            "`s` holds string, not JSON",
        ),
        (
            "@{ var a = new JArray(); a.Add(1, 2, 3); return a; }",
            (1, 26),
            "Add takes other arguments",
        ),
        ("@(Math.Sqrt(4))", (1, 3), "Min, Max, Abs"),
        (
            "@{ var a = 1; var a = 2; return a; }",
            (1, 15),
            "already declared",
        ),
    ];
    let mut failed = Vec::new();
    for (text, (line, column), needle) in cases {
        match Expression::parse(text) {
            Ok(_) => failed.push(format!("{text}: accepted")),
            Err(e) => {
                let msg = e.to_string();
                if (e.line, e.column) != (*line, *column) || !msg.contains(needle) {
                    failed.push(format!(
                        "{text}: got {msg:?} at {}:{}, want {needle:?} at {line}:{column}",
                        e.line, e.column
                    ));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn refusal_positions_point_into_the_document() {
    let text = "@{\n    var a = 1;\n    return context.Requst.Method;\n}";
    let e = Expression::parse_at(text, 10, 21).unwrap_err();
    assert_eq!((e.line, e.column), (12, 12), "{e}");
    assert!(e.expression.contains("context.Requst"), "{e}");
}

/// Failures while evaluating: an error value for LastError, never a panic.
#[test]
fn runtime_failures() {
    let mut f = common::Fixture::new();
    f.subscription = false;
    f.last_error = false;
    let ctx = f.ctx();
    let cases: &[(&str, &str)] = &[
        (
            "@(context.Subscription.Id)",
            "Object reference not set to an instance of an object.",
        ),
        ("@(context.LastError.Message)", "Object reference not set"),
        ("@(int.Parse(\"abc\"))", "was not in a correct format"),
        ("@(int.Parse(\"99999999999\"))", "too large or too small"),
        (
            "@((int)context.Variables[\"maxAge\"])",
            "Unable to cast object of type 'System.String' to type 'int'",
        ),
        ("@((Jwt)context.Variables[\"count\"])", "Unable to cast"),
        (
            "@(((IResponse)context.Variables[\"jwt\"]).StatusCode)",
            "Unable to cast object of type 'Jwt' to type 'IResponse'",
        ),
        (
            "@(context.Variables[\"nope\"])",
            "The given key 'nope' was not present in the dictionary.",
        ),
        (
            "@(1 / (context.Request.Url.Port - 443))",
            "Attempted to divide by zero.",
        ),
        ("@(JObject.Parse(\"{oops\"))", "Error parsing JSON"),
        (
            "@(new JObject(new JProperty(\"a\", 1), new JProperty(\"a\", 2)))",
            "Property with the same name already exists",
        ),
        ("@(Uri.EscapeDataString(null))", "Value cannot be null."),
        ("@(JObject.Parse(\"[1]\"))", "JArray"),
        ("@(context.Response.Body.As<JObject>())", "JArray"),
        ("@(\"abc\".Substring(5))", "Index and length"),
        ("@(\"abc\"[9])", "outside the bounds"),
        (
            "@(Convert.FromBase64String(\"***\"))",
            "not a valid Base-64 string",
        ),
        ("@(\"x\".AsJwt().Subject)", "Object reference not set"),
        (
            "@(context.Request.Headers[\"nope\"])",
            "not present in the dictionary",
        ),
        (
            "@(\"a\".Split(',').First(x => x == \"b\"))",
            "Sequence contains no matching element",
        ),
        ("@(string.Format(\"{1}\", \"a\"))", "Index (zero based)"),
        (
            "@(DateTime.UtcNow.ToString(\"Q\"))",
            "not in a correct format",
        ),
        (
            "@(context.Variables.GetValueOrDefault<int>(\"maxAge\"))",
            "Unable to cast",
        ),
    ];
    let mut failed = Vec::new();
    for (text, needle) in cases {
        let expr = Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match expr.eval(&ctx) {
            Ok(v) => failed.push(format!("{text}: gave {v:?}")),
            Err(e) => {
                if e.reason != EXPRESSION_FAILURE
                    || !e.message.starts_with("Expression evaluation failed. ")
                    || !e.message.contains(needle)
                    || e.line != 1
                {
                    failed.push(format!("{text}: {e:?}, want {needle:?}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn static_types() {
    let cases: &[(&str, &str)] = &[
        ("@(context.Response.StatusCode)", "int"),
        (
            "@(context.Request.Headers)",
            "IReadOnlyDictionary<string, string[]>",
        ),
        ("@(context.Request.Body.As<JObject>())", "JObject"),
        ("@(\"a\".AsJwt())", "Jwt"),
        ("@(context.Variables[\"x\"])", "object"),
        ("@(1 + 2L)", "long"),
        ("@(\"a,b\".Split(','))", "string[]"),
        ("@{ if (true) { return null; } return \"a\"; }", "string"),
        (
            "@(context.Request.Headers.Select(h => h.Value.Length))",
            "int[]",
        ),
    ];
    for (text, want) in cases {
        let e = Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(e.ty().to_string(), *want, "{text}");
    }
}
