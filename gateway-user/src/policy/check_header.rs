//! `check-header`: the request must carry a header, optionally with one of
//! the listed values; otherwise the configured status and message.

use gateway_model::policy::check_header::CheckHeaderSpec;

use super::{context::Ctx, respond};

#[derive(Debug)]
pub struct CheckHeader(CheckHeaderSpec);

impl CheckHeader {
    pub fn new(spec: &CheckHeaderSpec) -> Self {
        CheckHeader(spec.clone())
    }

    pub fn check(&self, ctx: &Ctx) -> Option<respond::Answer> {
        let spec = &self.0;
        let found = ctx.headers.get_all(&spec.name).iter().any(|v| {
            let Ok(v) = v.to_str() else { return false };
            spec.values.is_empty()
                || spec.values.iter().any(|want| {
                    if spec.ignore_case {
                        want.eq_ignore_ascii_case(v)
                    } else {
                        want == v
                    }
                })
        });
        (!found).then(|| respond::refusal(spec.status, &spec.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str, header: Option<&str>) -> Option<u16> {
        let p =
            CheckHeader::new(&CheckHeaderSpec::parse(serde_yaml::from_str(args).unwrap()).unwrap());
        let mut headers = hyper::HeaderMap::new();
        if let Some(v) = header {
            headers.insert("x-env", v.parse().unwrap());
        }
        let method = hyper::Method::GET;
        let ctx = Ctx::test(&method, &mut headers);
        p.check(&ctx).map(|r| r.status().as_u16())
    }

    #[test]
    fn presence_values_and_case() {
        assert_eq!(run("{name: X-Env}", None), Some(401));
        assert_eq!(run("{name: X-Env}", Some("x")), None);
        let listed = "{name: X-Env, values: [prod], failed_check_httpcode: 400}";
        assert_eq!(run(listed, Some("PROD")), Some(400));
        assert_eq!(run(listed, Some("prod")), None);
        assert_eq!(
            run(
                "{name: X-Env, values: [prod], ignore_case: true}",
                Some("PROD")
            ),
            None
        );
    }
}
