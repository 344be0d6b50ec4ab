//! The catalog's named certificates (`certificates:`): client or CA
//! certificates that `validate-client-certificate` identities name by id
//! (`certificate-id`, `issuer-certificate-id`); those with `ca: true` are
//! trust anchors for `validate-trust`, beside the listener's CA bundle.

use super::file::CertificateFile;
use crate::{
    cert::{CertInfo, pem_certificates},
    policy::{Placed, PolicySpec, authentication_certificate::AuthenticationCertificateSpec},
};

/// One named certificate, parsed.
#[derive(Clone, Debug)]
pub struct NamedCertificate {
    pub id: String,
    pub der: Vec<u8>,
    pub info: CertInfo,
    pub ca: bool,
    /// Its private key's file (`authentication-certificate`).
    pub key_file: Option<std::path::PathBuf>,
}

/// Parses the list; problems go to `problems` with the certificate's id.
pub(super) fn parse(
    files: &[CertificateFile],
    problems: &mut Vec<String>,
) -> Vec<NamedCertificate> {
    let mut out: Vec<NamedCertificate> = Vec::new();
    for f in files {
        let at = format!("certificate \"{}\"", f.id);
        if f.id.is_empty() || out.iter().any(|c| c.id == f.id) {
            problems.push(format!("{at}: id is empty or used twice"));
            continue;
        }
        let parsed = pem_certificates(&f.pem).and_then(|ders| {
            let der = ders.into_iter().next().unwrap_or_default();
            CertInfo::parse(&der).map(|info| (der, info))
        });
        match parsed {
            Ok((der, info)) => out.push(NamedCertificate {
                id: f.id.clone(),
                der,
                info,
                ca: f.ca,
                key_file: f.key_file.clone(),
            }),
            Err(m) => problems.push(format!(
                "{at}: pem: {m}; paste the certificate's PEM (-----BEGIN CERTIFICATE-----...)"
            )),
        }
    }
    out
}

/// Every `validate-client-certificate` and `authentication-certificate`
/// must name certificates the catalog has.
pub(super) fn check_references(
    placed: &[&Placed],
    named: &[NamedCertificate],
    problems: &mut Vec<String>,
) {
    for p in placed {
        match &p.spec {
            PolicySpec::ValidateClientCertificate(v) => {
                for id in v.certificate_ids() {
                    if !named.iter().any(|c| c.id == id) {
                        problems.push(format!(
                            "{}: validate-client-certificate: certificate \"{id}\" is not in the catalog's certificates; add it there (id and pem) or fix the id",
                            p.place
                        ));
                    }
                }
            }
            PolicySpec::AuthenticationCertificate(a) => {
                if let Err(m) = find_with_key(named, a) {
                    problems.push(format!("{}: authentication-certificate: {m}", p.place));
                }
            }
            _ => {}
        }
    }
}

/// The certificate `authentication-certificate` names, which must have a
/// key file.
pub fn find_with_key<'a>(
    named: &'a [NamedCertificate],
    spec: &AuthenticationCertificateSpec,
) -> Result<&'a NamedCertificate, String> {
    let found = match spec {
        AuthenticationCertificateSpec::Id(id) => named.iter().find(|c| c.id == *id),
        AuthenticationCertificateSpec::Thumbprint(t) => {
            named.iter().find(|c| c.info.thumbprint == *t)
        }
    };
    let Some(c) = found else {
        return Err(format!(
            "{spec:?} is not in the catalog's certificates; add it there (id, pem and key_file)"
        ));
    };
    if c.key_file.is_none() {
        return Err(format!(
            "certificate \"{}\" has no key_file; give the PEM file of its private key",
            c.id
        ));
    }
    Ok(c)
}
