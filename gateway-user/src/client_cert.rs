//! Client certificates of the HTTPS listener: what a client presented,
//! parsed once per connection (`gateway_model::cert::CertInfo`), and
//! whether it chains to the listener's CA bundle and is not revoked.
//!
//! With `client_certificates = "require"` rustls verifies the chain during
//! the handshake (WebPkiClientVerifier, CRLs included) and refuses it;
//! with `"request"` the handshake only checks that the client holds the
//! certificate's key, and the chain is verified here afterwards, so that
//! `validate-client-certificate` can answer 403 with the reason.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use gateway_model::cert::CertInfo;
use rustls::{
    DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

/// A client's certificate, as policies, key templates and conditions see it.
#[derive(Debug)]
pub struct ClientCert {
    pub info: CertInfo,
    /// Leaf first, as the client sent it.
    pub chain: Vec<CertificateDer<'static>>,
    /// The issuer's thumbprint, when the issuer is in the chain sent or in
    /// the listener's CA bundle.
    pub issuer_thumbprint: Option<String>,
    /// What the listener's CA bundle and CRLs said.
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Chains to the listener's CA bundle, not revoked.
    Trusted,
    /// Chains to the bundle but a CRL lists it.
    Revoked,
    /// Does not chain (the reason).
    Untrusted(String),
    /// The listener has no CA bundle (`request` without `client_ca_file`).
    NoCa,
}

impl ClientCert {
    /// The certificate a client presented on a connection to a listener
    /// certificate with `trust`; `None` when the leaf does not parse
    /// (rustls accepted it, so this is rare: it is then treated as absent).
    pub fn new(chain: &[CertificateDer<'_>], trust: &Trust) -> Option<ClientCert> {
        let leaf = chain.first()?;
        let info = CertInfo::parse(leaf).ok()?;
        let chain: Vec<CertificateDer<'static>> =
            chain.iter().map(|c| c.clone().into_owned()).collect();
        let issuer_thumbprint = chain[1..]
            .iter()
            .filter_map(|c| CertInfo::parse(c).ok())
            .chain(trust.ca_infos.iter().cloned())
            .find(|c| c.subject_der == info.issuer_der)
            .map(|c| c.thumbprint);
        let verdict = if trust.verified_in_handshake {
            Verdict::Trusted
        } else {
            trust.verdict(&chain, &info)
        };
        Some(ClientCert {
            info,
            chain,
            issuer_thumbprint,
            verdict,
        })
    }
}

/// A listener certificate's CA bundle and CRLs, for verifying chains.
#[derive(Debug, Default)]
pub struct Trust {
    /// `require`: rustls verified the chain before the handshake ended.
    verified_in_handshake: bool,
    /// Without CRLs.
    chains: Option<Arc<dyn ClientCertVerifier>>,
    /// With them (`None` without CRL files).
    revocation: Option<Arc<dyn ClientCertVerifier>>,
    ca_infos: Vec<CertInfo>,
}

impl Trust {
    /// `cas` and `crls` already read; the error names what rustls refused.
    pub fn new(
        cas: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
        verified_in_handshake: bool,
    ) -> Result<Trust, String> {
        if cas.is_empty() {
            return Ok(Trust::default());
        }
        let chains = verifier(cas, Vec::new(), false)?;
        let revocation = if crls.is_empty() {
            None
        } else {
            Some(verifier(cas, crls, false)?)
        };
        Ok(Trust {
            verified_in_handshake,
            chains: Some(chains),
            revocation,
            ca_infos: cas.iter().filter_map(|c| CertInfo::parse(c).ok()).collect(),
        })
    }

    /// The verdict on `chain`, at a time inside the leaf's validity so that
    /// expiry stays the policy's own check (`validate-not-after`).
    pub fn verdict(&self, chain: &[CertificateDer<'static>], info: &CertInfo) -> Verdict {
        let Some(chains) = &self.chains else {
            return Verdict::NoCa;
        };
        match verify_at_validity(chains, chain, info) {
            Err(e) => Verdict::Untrusted(describe(&e)),
            Ok(()) => match self
                .revocation
                .as_ref()
                .map(|r| verify_at_validity(r, chain, info))
            {
                Some(Err(Error::InvalidCertificate(rustls::CertificateError::Revoked))) => {
                    Verdict::Revoked
                }
                Some(Err(e)) => Verdict::Untrusted(describe(&e)),
                Some(Ok(())) | None => Verdict::Trusted,
            },
        }
    }
}

/// Whether `chain` verifies with `verifier`, at a time within the leaf's
/// validity.
pub fn chain_verdict(
    verifier: &Arc<dyn ClientCertVerifier>,
    chain: &[CertificateDer<'static>],
    info: &CertInfo,
) -> Result<(), String> {
    verify_at_validity(verifier, chain, info).map_err(|e| describe(&e))
}

fn verify_at_validity(
    verifier: &Arc<dyn ClientCertVerifier>,
    chain: &[CertificateDer<'static>],
    info: &CertInfo,
) -> Result<(), Error> {
    let now = unix_now().clamp(info.not_before, info.not_after.max(info.not_before));
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now).unwrap_or(0),
    ));
    verifier
        .verify_client_cert(&chain[0], &chain[1..], at)
        .map(|_| ())
}

/// A chain verifier with `cas` as roots; unknown revocation status is
/// allowed (a CA without a CRL in the list is not checked) and only the
/// leaf's revocation is checked. `mandatory`: a handshake without a
/// client certificate fails.
pub fn verifier(
    cas: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
    mandatory: bool,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| format!("a CA certificate is unusable ({e})"))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    if !mandatory {
        builder = builder.allow_unauthenticated();
    }
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    builder.build().map_err(|e| format!("{e}"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn describe(e: &Error) -> String {
    use rustls::CertificateError as C;
    match e {
        Error::InvalidCertificate(C::UnknownIssuer) => "it is not issued by a trusted CA".into(),
        Error::InvalidCertificate(C::Revoked) => "it is revoked".into(),
        Error::InvalidCertificate(C::BadSignature) => "its signature does not verify".into(),
        Error::InvalidCertificate(c) => format!("{c:?}"),
        other => other.to_string(),
    }
}

/// The handshake verifier of `request`: the client proves it holds the
/// key of the certificate it sends; the chain is judged afterwards
/// (`Trust::verdict`) and by the policy.
#[derive(Debug)]
pub struct Requested {
    algorithms: WebPkiSupportedAlgorithms,
    hints: Vec<DistinguishedName>,
}

impl Requested {
    pub fn new(cas: &[CertificateDer<'static>]) -> Requested {
        let hints = cas
            .iter()
            .filter_map(|c| CertInfo::parse(c).ok())
            .map(|i| DistinguishedName::from(i.subject_der))
            .collect();
        Requested {
            algorithms: provider().signature_verification_algorithms,
            hints,
        }
    }
}

impl ClientCertVerifier for Requested {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
