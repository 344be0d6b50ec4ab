//! Test certificates: a throwaway CA and leaf certificates it signs,
//! written as PEM files into a test's temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA that signs leaf certificates for the names a test asks for.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem_path: PathBuf,
}

/// A leaf certificate and its key, as files.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "edgegw test CA");
        let cert = params.self_signed(&key).unwrap();
        let pem_path = dir.join("ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        TestCa {
            cert,
            key,
            pem_path,
        }
    }

    /// A leaf for `names` (DNS names or IP addresses), files `<tag>.pem`
    /// and `<tag>.key` in `dir`.
    pub fn leaf(&self, dir: &Path, tag: &str, names: &[&str]) -> TestCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let out = TestCert {
            cert: dir.join(format!("{tag}.pem")),
            key: dir.join(format!("{tag}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).unwrap();
        std::fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }
}
