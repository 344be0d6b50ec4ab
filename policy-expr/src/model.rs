//! The context model: what `context` shows an expression, as APIM
//! documents it, and the struct the gateway fills per request. Members
//! are resolved when the expression is loaded (`Prop`), so a request
//! costs a field read, never a name lookup.

use std::collections::HashMap;

use time::{Duration, OffsetDateTime};

use crate::{types::Ty, value::Value};

/// Variables set by `set-variable`, by name.
pub type Variables<'a> = HashMap<String, Value<'a>>;

/// A URL as the context shows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Url<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: i32,
    pub path: &'a str,
    /// Decoded query parameters, in order.
    pub query: &'a [(String, String)],
    /// The query as sent, with its `?` (or empty).
    pub query_string: &'a str,
}

impl Url<'_> {
    /// `Url.ToString()`: scheme://host[:port]path?query, the port only
    /// when it is not the scheme's default.
    pub fn to_text(&self) -> String {
        let default = matches!((self.scheme, self.port), ("http", 80) | ("https", 443));
        let mut out = format!("{}://{}", self.scheme, self.host);
        if !default && self.port > 0 {
            out.push_str(&format!(":{}", self.port));
        }
        out.push_str(self.path);
        out.push_str(self.query_string);
        out
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: Url<'a>,
    pub original_url: Url<'a>,
    pub headers: &'a http::HeaderMap,
    pub ip_address: &'a str,
    /// The body, when the gateway buffered it.
    pub body: Option<&'a [u8]>,
    /// URL template parameters of the matched operation.
    pub matched_parameters: &'a [(String, String)],
}

#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    pub status_code: i32,
    pub status_reason: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Subscription<'a> {
    pub id: &'a str,
    pub key: &'a str,
    pub name: &'a str,
    pub primary_key: &'a str,
    pub secondary_key: &'a str,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Product<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Api<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub path: &'a str,
    pub service_url: Url<'a>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Operation<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub method: &'a str,
    pub url_template: &'a str,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct User<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// `context.LastError`, in on-error.
#[derive(Clone, Copy, Debug, Default)]
pub struct LastError<'a> {
    pub source: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
    pub scope: &'a str,
    pub section: &'a str,
    pub path: &'a str,
    pub policy_id: &'a str,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Deployment<'a> {
    pub region: &'a str,
    pub service_name: &'a str,
    pub gateway_id: &'a str,
}

/// Everything an expression sees, filled by the gateway per request.
/// Absent parts (no subscription, no response yet, no error) are `None`:
/// reading them is C#'s null reference, unless written with `?.`.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub request: Request<'a>,
    pub response: Option<Response<'a>>,
    pub subscription: Option<Subscription<'a>>,
    pub product: Option<Product<'a>>,
    pub api: Option<Api<'a>>,
    pub operation: Option<Operation<'a>>,
    pub user: Option<User<'a>>,
    pub variables: &'a Variables<'a>,
    pub last_error: Option<LastError<'a>>,
    pub deployment: Deployment<'a>,
    pub request_id: u128,
    pub timestamp: OffsetDateTime,
    pub elapsed: Duration,
}

/// Objects of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Context,
    Request,
    Response,
    Url(UrlOf),
    Body(BodyOf),
    Subscription,
    Product,
    Api,
    Operation,
    User,
    LastError,
    Deployment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlOf {
    Request,
    Original,
    Service,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyOf {
    Request,
    Response,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Context => "context",
            Kind::Request => "context.Request",
            Kind::Response => "context.Response",
            Kind::Url(UrlOf::Request) => "context.Request.Url",
            Kind::Url(UrlOf::Original) => "context.Request.OriginalUrl",
            Kind::Url(UrlOf::Service) => "context.Api.ServiceUrl",
            Kind::Body(BodyOf::Request) => "context.Request.Body",
            Kind::Body(BodyOf::Response) => "context.Response.Body",
            Kind::Subscription => "context.Subscription",
            Kind::Product => "context.Product",
            Kind::Api => "context.Api",
            Kind::Operation => "context.Operation",
            Kind::User => "context.User",
            Kind::LastError => "context.LastError",
            Kind::Deployment => "context.Deployment",
        }
    }

    /// Members of this object, for the refusal of an unknown one.
    pub fn members(self) -> &'static [&'static str] {
        match self {
            Kind::Context => &[
                "Request",
                "Response",
                "Subscription",
                "Product",
                "Api",
                "Operation",
                "User",
                "Variables",
                "LastError",
                "Deployment",
                "RequestId",
                "Timestamp",
                "Elapsed",
            ],
            Kind::Request => &[
                "Method",
                "Url",
                "OriginalUrl",
                "Headers",
                "IpAddress",
                "Body",
                "MatchedParameters",
            ],
            Kind::Response => &["StatusCode", "StatusReason", "Headers", "Body"],
            Kind::Url(_) => &[
                "Scheme",
                "Host",
                "Port",
                "Path",
                "Query",
                "QueryString",
                "ToString()",
                "ToUri()",
            ],
            Kind::Body(_) => &[
                "As<string>()",
                "As<JObject>()",
                "As<JArray>()",
                "As<JToken>()",
            ],
            Kind::Subscription => &["Id", "Key", "Name", "PrimaryKey", "SecondaryKey"],
            Kind::Product => &["Id", "Name"],
            Kind::Api => &["Id", "Name", "Path", "ServiceUrl"],
            Kind::Operation => &["Id", "Name", "Method", "UrlTemplate"],
            Kind::User => &["Id", "Email", "FirstName", "LastName"],
            Kind::LastError => &[
                "Source", "Reason", "Message", "Scope", "Section", "Path", "PolicyId",
            ],
            Kind::Deployment => &["Region", "ServiceName", "GatewayId"],
        }
    }
}

/// A leaf of the model: read per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prop {
    Variables,
    RequestId,
    Timestamp,
    Elapsed,
    RequestMethod,
    RequestHeaders,
    RequestIp,
    MatchedParameters,
    UrlScheme(UrlOf),
    UrlHost(UrlOf),
    UrlPort(UrlOf),
    UrlPath(UrlOf),
    UrlQuery(UrlOf),
    UrlQueryString(UrlOf),
    /// The URL as text (`ToString()`, or used as a string).
    UrlText(UrlOf),
    StatusCode,
    StatusReason,
    ResponseHeaders,
    SubscriptionId,
    SubscriptionKey,
    SubscriptionName,
    SubscriptionPrimaryKey,
    SubscriptionSecondaryKey,
    ProductId,
    ProductName,
    ApiId,
    ApiName,
    ApiPath,
    OperationId,
    OperationName,
    OperationMethod,
    OperationUrlTemplate,
    UserId,
    UserEmail,
    UserFirstName,
    UserLastName,
    ErrorSource,
    ErrorReason,
    ErrorMessage,
    ErrorScope,
    ErrorSection,
    ErrorPath,
    ErrorPolicyId,
    Region,
    ServiceName,
    GatewayId,
}

/// What `kind.name` is: another object of the model or a leaf.
pub enum Member {
    Object(Kind),
    Leaf(Prop, Ty),
}

pub fn member(kind: Kind, name: &str) -> Option<Member> {
    use Member::{Leaf, Object};
    let s = || Ty::Str;
    Some(match (kind, name) {
        (Kind::Context, "Request") => Object(Kind::Request),
        (Kind::Context, "Response") => Object(Kind::Response),
        (Kind::Context, "Subscription") => Object(Kind::Subscription),
        (Kind::Context, "Product") => Object(Kind::Product),
        (Kind::Context, "Api") => Object(Kind::Api),
        (Kind::Context, "Operation") => Object(Kind::Operation),
        (Kind::Context, "User") => Object(Kind::User),
        (Kind::Context, "LastError") => Object(Kind::LastError),
        (Kind::Context, "Deployment") => Object(Kind::Deployment),
        (Kind::Context, "Variables") => Leaf(Prop::Variables, Ty::Dict(Box::new(Ty::Object))),
        (Kind::Context, "RequestId") => Leaf(Prop::RequestId, Ty::Guid),
        (Kind::Context, "Timestamp") => Leaf(Prop::Timestamp, Ty::DateTime),
        (Kind::Context, "Elapsed") => Leaf(Prop::Elapsed, Ty::TimeSpan),
        (Kind::Request, "Method") => Leaf(Prop::RequestMethod, s()),
        (Kind::Request, "Url") => Object(Kind::Url(UrlOf::Request)),
        (Kind::Request, "OriginalUrl") => Object(Kind::Url(UrlOf::Original)),
        (Kind::Request, "Headers") => Leaf(Prop::RequestHeaders, Ty::Headers),
        (Kind::Request, "IpAddress") => Leaf(Prop::RequestIp, s()),
        (Kind::Request, "Body") => Object(Kind::Body(BodyOf::Request)),
        (Kind::Request, "MatchedParameters") => {
            Leaf(Prop::MatchedParameters, Ty::Dict(Box::new(Ty::Str)))
        }
        (Kind::Url(u), "Scheme") => Leaf(Prop::UrlScheme(u), s()),
        (Kind::Url(u), "Host") => Leaf(Prop::UrlHost(u), s()),
        (Kind::Url(u), "Port") => Leaf(Prop::UrlPort(u), Ty::Int),
        // `ToUri()` gives a System.Uri: its AbsolutePath is the path.
        (Kind::Url(u), "Path" | "AbsolutePath") => Leaf(Prop::UrlPath(u), s()),
        (Kind::Url(u), "AbsoluteUri") => Leaf(Prop::UrlText(u), s()),
        (Kind::Url(u), "Query") => Leaf(Prop::UrlQuery(u), Ty::Dict(Box::new(Ty::Str))),
        (Kind::Url(u), "QueryString") => Leaf(Prop::UrlQueryString(u), s()),
        (Kind::Response, "StatusCode") => Leaf(Prop::StatusCode, Ty::Int),
        (Kind::Response, "StatusReason") => Leaf(Prop::StatusReason, s()),
        (Kind::Response, "Headers") => Leaf(Prop::ResponseHeaders, Ty::Headers),
        (Kind::Response, "Body") => Object(Kind::Body(BodyOf::Response)),
        (Kind::Subscription, "Id") => Leaf(Prop::SubscriptionId, s()),
        (Kind::Subscription, "Key") => Leaf(Prop::SubscriptionKey, s()),
        (Kind::Subscription, "Name") => Leaf(Prop::SubscriptionName, s()),
        (Kind::Subscription, "PrimaryKey") => Leaf(Prop::SubscriptionPrimaryKey, s()),
        (Kind::Subscription, "SecondaryKey") => Leaf(Prop::SubscriptionSecondaryKey, s()),
        (Kind::Product, "Id") => Leaf(Prop::ProductId, s()),
        (Kind::Product, "Name") => Leaf(Prop::ProductName, s()),
        (Kind::Api, "Id") => Leaf(Prop::ApiId, s()),
        (Kind::Api, "Name") => Leaf(Prop::ApiName, s()),
        (Kind::Api, "Path") => Leaf(Prop::ApiPath, s()),
        (Kind::Api, "ServiceUrl") => Object(Kind::Url(UrlOf::Service)),
        (Kind::Operation, "Id") => Leaf(Prop::OperationId, s()),
        (Kind::Operation, "Name") => Leaf(Prop::OperationName, s()),
        (Kind::Operation, "Method") => Leaf(Prop::OperationMethod, s()),
        (Kind::Operation, "UrlTemplate") => Leaf(Prop::OperationUrlTemplate, s()),
        (Kind::User, "Id") => Leaf(Prop::UserId, s()),
        (Kind::User, "Email") => Leaf(Prop::UserEmail, s()),
        (Kind::User, "FirstName") => Leaf(Prop::UserFirstName, s()),
        (Kind::User, "LastName") => Leaf(Prop::UserLastName, s()),
        (Kind::LastError, "Source") => Leaf(Prop::ErrorSource, s()),
        (Kind::LastError, "Reason") => Leaf(Prop::ErrorReason, s()),
        (Kind::LastError, "Message") => Leaf(Prop::ErrorMessage, s()),
        (Kind::LastError, "Scope") => Leaf(Prop::ErrorScope, s()),
        (Kind::LastError, "Section") => Leaf(Prop::ErrorSection, s()),
        (Kind::LastError, "Path") => Leaf(Prop::ErrorPath, s()),
        (Kind::LastError, "PolicyId") => Leaf(Prop::ErrorPolicyId, s()),
        (Kind::Deployment, "Region") => Leaf(Prop::Region, s()),
        (Kind::Deployment, "ServiceName") => Leaf(Prop::ServiceName, s()),
        (Kind::Deployment, "GatewayId") => Leaf(Prop::GatewayId, s()),
        _ => return None,
    })
}

/// Reads a leaf; `None` when the object holding it is absent (null).
pub fn read<'a>(ctx: &Context<'a>, prop: Prop) -> Option<Value<'a>> {
    use crate::value::Dict;
    let s = Value::str;
    let url = |u: UrlOf| -> Option<Url<'a>> {
        match u {
            UrlOf::Request => Some(ctx.request.url),
            UrlOf::Original => Some(ctx.request.original_url),
            UrlOf::Service => ctx.api.map(|a| a.service_url),
        }
    };
    Some(match prop {
        Prop::Variables => Value::Dict(Dict::Variables(ctx.variables)),
        Prop::RequestId => Value::Guid(ctx.request_id),
        Prop::Timestamp => Value::DateTime(ctx.timestamp),
        Prop::Elapsed => Value::TimeSpan(ctx.elapsed),
        Prop::RequestMethod => s(ctx.request.method),
        Prop::RequestHeaders => Value::Dict(Dict::Headers(ctx.request.headers)),
        Prop::RequestIp => s(ctx.request.ip_address),
        Prop::MatchedParameters => Value::Dict(Dict::Pairs(ctx.request.matched_parameters)),
        Prop::UrlScheme(u) => s(url(u)?.scheme),
        Prop::UrlHost(u) => s(url(u)?.host),
        Prop::UrlPort(u) => Value::Int(url(u)?.port),
        Prop::UrlPath(u) => s(url(u)?.path),
        Prop::UrlQuery(u) => Value::Dict(Dict::Pairs(url(u)?.query)),
        Prop::UrlQueryString(u) => s(url(u)?.query_string),
        Prop::UrlText(u) => Value::string(url(u)?.to_text()),
        Prop::StatusCode => Value::Int(ctx.response?.status_code),
        Prop::StatusReason => s(ctx.response?.status_reason),
        Prop::ResponseHeaders => Value::Dict(Dict::Headers(ctx.response?.headers)),
        Prop::SubscriptionId => s(ctx.subscription?.id),
        Prop::SubscriptionKey => s(ctx.subscription?.key),
        Prop::SubscriptionName => s(ctx.subscription?.name),
        Prop::SubscriptionPrimaryKey => s(ctx.subscription?.primary_key),
        Prop::SubscriptionSecondaryKey => s(ctx.subscription?.secondary_key),
        Prop::ProductId => s(ctx.product?.id),
        Prop::ProductName => s(ctx.product?.name),
        Prop::ApiId => s(ctx.api?.id),
        Prop::ApiName => s(ctx.api?.name),
        Prop::ApiPath => s(ctx.api?.path),
        Prop::OperationId => s(ctx.operation?.id),
        Prop::OperationName => s(ctx.operation?.name),
        Prop::OperationMethod => s(ctx.operation?.method),
        Prop::OperationUrlTemplate => s(ctx.operation?.url_template),
        Prop::UserId => s(ctx.user?.id),
        Prop::UserEmail => s(ctx.user?.email),
        Prop::UserFirstName => s(ctx.user?.first_name),
        Prop::UserLastName => s(ctx.user?.last_name),
        Prop::ErrorSource => s(ctx.last_error?.source),
        Prop::ErrorReason => s(ctx.last_error?.reason),
        Prop::ErrorMessage => s(ctx.last_error?.message),
        Prop::ErrorScope => s(ctx.last_error?.scope),
        Prop::ErrorSection => s(ctx.last_error?.section),
        Prop::ErrorPath => s(ctx.last_error?.path),
        Prop::ErrorPolicyId => s(ctx.last_error?.policy_id),
        Prop::Region => s(ctx.deployment.region),
        Prop::ServiceName => s(ctx.deployment.service_name),
        Prop::GatewayId => s(ctx.deployment.gateway_id),
    })
}
