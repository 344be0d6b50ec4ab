//! `validate-client-certificate`: checks the certificate the client
//! presented on the TLS connection (`crate::client_cert`) as API
//! Management does: validity dates, trust (the listener's CA bundle or a
//! `ca: true` catalog certificate), revocation (the listener's CRLs) and
//! the identities, any one of which must match in every attribute it
//! gives. A refusal is 403 with the reason; `ignore-error` lets the
//! request through (logged at debug).

use std::sync::Arc;

use gateway_model::{
    catalog::NamedCertificate,
    cert::CertInfo,
    policy::validate_client_certificate::{Identity, ValidateClientCertificateSpec},
};
use hyper::StatusCode;
use rustls::server::danger::ClientCertVerifier;

use super::respond::{Answer, refusal};
use crate::client_cert::{ClientCert, Verdict, chain_verdict, unix_now, verifier};

#[derive(Debug)]
pub struct ValidateClientCertificate {
    spec: ValidateClientCertificateSpec,
    /// The catalog's CA certificates, as trust anchors beside the
    /// listener's (`None` without any).
    catalog_cas: Option<Verifier>,
    /// Per identity: its `certificate-id` thumbprint, and its
    /// `issuer-certificate-id` certificate as a chain verifier.
    named: Vec<(Option<String>, Option<Issuer>)>,
}

/// An `issuer-certificate-id` certificate and the verifier of chains to it.
type Issuer = (CertInfo, Verifier);

/// A chain verifier (rustls' own type is not `Debug`).
struct Verifier(Arc<dyn ClientCertVerifier>);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier")
    }
}

impl ValidateClientCertificate {
    /// `certificates`: the catalog's, which the model checked the ids against.
    pub fn new(spec: &ValidateClientCertificateSpec, certificates: &[NamedCertificate]) -> Self {
        let anchor = |ders: Vec<rustls_pki_types::CertificateDer<'static>>| {
            // A named certificate that webpki cannot use as a root (it parsed
            // as X.509, so rare) only matches nothing.
            verifier(&ders, Vec::new(), false)
                .inspect_err(|e| tracing::warn!(error = %e, "named certificate unusable as a CA"))
                .ok()
                .map(Verifier)
        };
        let cas: Vec<_> = certificates
            .iter()
            .filter(|c| c.ca)
            .map(|c| c.der.clone().into())
            .collect();
        let find = |id: &Option<String>| {
            id.as_ref()
                .and_then(|id| certificates.iter().find(|c| c.id == *id))
        };
        let named = spec
            .identities
            .iter()
            .map(|i| {
                let own = find(&i.certificate_id).map(|c| c.info.thumbprint.clone());
                let issuer = find(&i.issuer_certificate_id)
                    .and_then(|c| anchor(vec![c.der.clone().into()]).map(|v| (c.info.clone(), v)));
                (own, issuer)
            })
            .collect();
        ValidateClientCertificate {
            spec: spec.clone(),
            catalog_cas: if cas.is_empty() { None } else { anchor(cas) },
            named,
        }
    }

    pub fn check(&self, cert: Option<&ClientCert>) -> Option<Answer> {
        let why = self.refuse(cert, unix_now())?;
        if self.spec.ignore_error {
            tracing::debug!(reason = %why, "validate-client-certificate: ignored (ignore-error)");
            return None;
        }
        Some(refusal(StatusCode::FORBIDDEN, &why))
    }

    /// Why `cert` is refused at `now` (Unix seconds), if it is.
    fn refuse(&self, cert: Option<&ClientCert>, now: i64) -> Option<String> {
        let s = &self.spec;
        let Some(cert) = cert else {
            return Some(
                "Forbidden: a client certificate is required; connect over HTTPS presenting one"
                    .into(),
            );
        };
        let info = &cert.info;
        if s.validate_not_before && now < info.not_before {
            return Some(format!(
                "Forbidden: the client certificate is not valid yet (not before {})",
                date(info.not_before)
            ));
        }
        if s.validate_not_after && now > info.not_after {
            return Some(format!(
                "Forbidden: the client certificate has expired (not after {})",
                date(info.not_after)
            ));
        }
        if s.validate_trust && !matches!(cert.verdict, Verdict::Trusted | Verdict::Revoked) {
            let by_catalog = self
                .catalog_cas
                .as_ref()
                .is_some_and(|v| chain_verdict(&v.0, &cert.chain, info).is_ok());
            if !by_catalog {
                let reason = match &cert.verdict {
                    Verdict::Untrusted(r) => r.as_str(),
                    _ => "no trusted CA is configured for it",
                };
                return Some(format!(
                    "Forbidden: the client certificate is not trusted: {reason}"
                ));
            }
        }
        if s.validate_revocation && cert.verdict == Verdict::Revoked {
            return Some("Forbidden: the client certificate is revoked".into());
        }
        let matched = s.identities.is_empty()
            || s.identities
                .iter()
                .zip(&self.named)
                .any(|(id, named)| matches(id, named, cert));
        (!matched).then(|| {
            format!(
                "Forbidden: the client certificate (thumbprint {}) matches none of the allowed identities",
                info.thumbprint
            )
        })
    }
}

fn matches(
    id: &Identity,
    (own, issuer): &(Option<String>, Option<(CertInfo, Verifier)>),
    cert: &ClientCert,
) -> bool {
    let info = &cert.info;
    let eq = |want: &Option<String>, have: &str| {
        want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have))
    };
    let serial = info.serial_number.trim_start_matches('0');
    eq(&id.thumbprint, &info.thumbprint)
        && eq(
            &id.serial_number,
            if serial.is_empty() { "0" } else { serial },
        )
        && eq(&id.common_name, &info.common_name)
        && id
            .subject
            .as_ref()
            .is_none_or(|s| CertInfo::names_match(&info.subject, s))
        && id
            .dns_name
            .as_ref()
            .is_none_or(|d| info.dns_names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        && id
            .issuer_subject
            .as_ref()
            .is_none_or(|s| CertInfo::names_match(&info.issuer, s))
        && id.issuer_thumbprint.as_ref().is_none_or(|t| {
            cert.issuer_thumbprint
                .as_ref()
                .is_some_and(|have| have.eq_ignore_ascii_case(t))
        })
        && id.certificate_id.as_ref().is_none_or(|_| {
            own.as_ref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&info.thumbprint))
        })
        && id.issuer_certificate_id.as_ref().is_none_or(|_| {
            // Issued by it: named as the issuer and the signature verifies.
            issuer.as_ref().is_some_and(|(ca, v)| {
                ca.subject_der == info.issuer_der && chain_verdict(&v.0, &cert.chain, info).is_ok()
            })
        })
}

/// `2026-12-07T00:00:00Z`-style text of Unix seconds, for messages.
fn date(secs: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use gateway_model::cert::CertInfo;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
        SerialNumber, date_time_ymd,
    };
    use rustls_pki_types::CertificateDer;

    use super::*;
    use crate::client_cert::Trust;

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        Ca {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    fn client(ca: &Ca, cn: &str, serial: u64, years: (i32, i32)) -> CertificateDer<'static> {
        let mut p = CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "Example");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(serial));
        p.not_before = date_time_ymd(years.0, 1, 1);
        p.not_after = date_time_ymd(years.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        p.signed_by(&key, &ca.cert, &ca.key).unwrap().der().clone()
    }

    fn crl(ca: &Ca, serial: u64) -> rustls_pki_types::CertificateRevocationListDer<'static> {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2090, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&ca.cert, &ca.key).unwrap().der().clone()
    }

    fn policy(yaml: &str, named: &[NamedCertificate]) -> ValidateClientCertificate {
        let spec =
            ValidateClientCertificateSpec::parse(serde_yaml::from_str(yaml).unwrap()).unwrap();
        ValidateClientCertificate::new(&spec, named)
    }

    #[test]
    fn validity_trust_revocation_and_identities() {
        let good_ca = ca("Good CA");
        let other_ca = ca("Other CA");
        let trust = Trust::new(
            &[good_ca.cert.der().clone()],
            vec![crl(&good_ca, 66)],
            false,
        )
        .unwrap();
        let cert = |der: CertificateDer<'static>| ClientCert::new(&[der], &trust).unwrap();
        let valid = cert(client(&good_ca, "device-1", 7, (2024, 2090)));
        let expired = cert(client(&good_ca, "device-2", 8, (2020, 2021)));
        let foreign = cert(client(&other_ca, "device-3", 9, (2024, 2090)));
        let revoked = cert(client(&good_ca, "device-4", 66, (2024, 2090)));
        assert_eq!(valid.verdict, Verdict::Trusted);
        assert_eq!(revoked.verdict, Verdict::Revoked);
        assert!(matches!(foreign.verdict, Verdict::Untrusted(_)));
        assert_eq!(
            valid.issuer_thumbprint.as_deref(),
            Some(
                CertInfo::parse(good_ca.cert.der())
                    .unwrap()
                    .thumbprint
                    .as_str()
            )
        );
        // rcgen writes CN before O; shown most specific (last) first.
        assert_eq!(valid.info.subject, "O=Example, CN=device-1");
        assert_eq!(valid.info.serial_number, "07");

        let now = unix_now();
        let p = policy("{}", &[]);
        assert_eq!(p.refuse(Some(&valid), now), None);
        for (c, want) in [
            (None, "a client certificate is required"),
            (Some(&expired), "has expired (not after"),
            (
                Some(&foreign),
                "is not trusted: it is not issued by a trusted CA",
            ),
            (Some(&revoked), "is revoked"),
        ] {
            let why = p.refuse(c, now).unwrap();
            assert!(why.contains(want), "{why}");
        }
        // Each check can be turned off.
        let lax = policy(
            "{validate-not-after: false, validate-trust: false, validate-revocation: false}",
            &[],
        );
        for c in [&expired, &foreign, &revoked] {
            assert_eq!(lax.refuse(Some(c), now), None);
        }
        // ignore-error lets the request through.
        assert!(policy("{ignore-error: true}", &[]).check(None).is_none());
        assert_eq!(p.check(None).unwrap().status(), StatusCode::FORBIDDEN);

        // Identities: any one, every attribute of it.
        let t = &valid.info.thumbprint;
        let p = policy(&format!("{{identities: [{{thumbprint: '{t}'}}]}}"), &[]);
        assert_eq!(p.refuse(Some(&valid), now), None);
        let other = cert(client(&good_ca, "device-5", 10, (2024, 2090)));
        assert!(
            p.refuse(Some(&other), now)
                .unwrap()
                .contains("matches none")
        );
        let p = policy(
            "{identities: [{common-name: device-1, serial-number: '7', subject: 'O=Example, CN=device-1', dns-name: device-1.example, issuer-subject: 'CN=Good CA'}]}",
            &[],
        );
        assert_eq!(p.refuse(Some(&valid), now), None);
        assert!(p.refuse(Some(&other), now).is_some());

        // Named certificates: a catalog CA makes a foreign chain trusted,
        // and issuer-certificate-id needs the issuer's signature.
        let named = |id: &str, der: &CertificateDer<'static>, is_ca: bool| NamedCertificate {
            id: id.into(),
            der: der.to_vec(),
            info: CertInfo::parse(der).unwrap(),
            ca: is_ca,
            key_file: None,
        };
        let certs = [
            named("other", other_ca.cert.der(), true),
            named("good", good_ca.cert.der(), false),
        ];
        assert_eq!(policy("{}", &certs).refuse(Some(&foreign), now), None);
        let p = policy("{identities: [{issuer-certificate-id: other}]}", &certs);
        assert_eq!(p.refuse(Some(&foreign), now), None);
        assert!(p.refuse(Some(&valid), now).is_some());
        let p = policy("{identities: [{issuer-certificate-id: good}]}", &certs);
        assert_eq!(p.refuse(Some(&valid), now), None);
    }
}
