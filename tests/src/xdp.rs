//! The shipped XDP program (the object embedded in `edgegw`), loaded
//! unattached for BPF_PROG_TEST_RUN. Its maps are pinned in a directory of
//! their own (removed on drop) so that tests drive them through the same
//! pinned-map code as the daemon and the CLI.

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp},
};
use edgegw::{
    config::{Config, DosPolicy},
    datapath::{self, PinDir},
};
use gateway_common::{ALL_MAPS, COUNTERS_MAP, Counter, PROGRAM_NAME, Reason};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

pub struct TestProgram {
    pub ebpf: Ebpf,
    /// Where the maps are pinned: `/sys/fs/bpf/edgegw-test/<unique>`.
    pub pins: PinDir,
    _cleanup: Cleanup,
}

/// Removes a test's pin directory (and the shared parent once empty) on
/// drop, also when loading fails half-way.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir(self.0.parent().unwrap());
    }
}

impl TestProgram {
    /// Loads and verifies the program with fresh maps private to this test
    /// (no configuration written: the program fails open).
    pub fn load() -> TestProgram {
        Self::load_with_sources(gateway_common::DEFAULT_SOURCES)
    }

    /// As `load`, with a `SOURCES` map of `max_sources` entries.
    pub fn load_with_sources(max_sources: u32) -> TestProgram {
        Self::load_object(edgegw::EBPF_OBJECT, max_sources)
    }

    /// As `load_with_sources`, from another build of the object (the
    /// benchmark compares against a baseline this way).
    pub fn load_object(object: &[u8], max_sources: u32) -> TestProgram {
        edgegw::datapath::ensure_bpffs().expect("bpffs");
        let name = crate::netns::unique_name("t");
        let pins = PinDir {
            path: std::path::Path::new("/sys/fs/bpf/edgegw-test").join(&name),
            iface: name,
        };
        std::fs::create_dir_all(&pins.path).unwrap();
        let cleanup = Cleanup(pins.path.clone());
        let mut loader = EbpfLoader::new();
        for map in ALL_MAPS {
            loader.map_pin_path(map, pins.map(map));
        }
        let mut ebpf = loader
            .map_max_entries(gateway_common::SOURCES_MAP, max_sources)
            .load(object)
            .expect("parsing the XDP object");
        let prog: &mut Xdp = ebpf.program_mut(PROGRAM_NAME).unwrap().try_into().unwrap();
        edgegw::datapath::load_program(prog).expect("the verifier accepts the XDP program");
        TestProgram {
            ebpf,
            pins,
            _cleanup: cleanup,
        }
    }

    pub fn program(&self) -> &Xdp {
        self.ebpf.program(PROGRAM_NAME).unwrap().try_into().unwrap()
    }

    /// Runs one frame through the program and returns the XDP action.
    pub fn run(&self, frame: &[u8]) -> u32 {
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..Default::default()
        };
        self.program()
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .return_value
    }

    /// Runs `frame` `repeat` times in the kernel; returns the average time.
    pub fn run_repeated(&self, frame: &[u8], repeat: u32) -> std::time::Duration {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..Default::default()
        };
        self.program()
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .duration
    }

    /// Counter totals (summed over CPUs) for one reason: (packets, bytes).
    pub fn counter(&self, reason: Reason) -> (u64, u64) {
        let map: PerCpuArray<&MapData, Counter> =
            PerCpuArray::try_from(self.ebpf.map(COUNTERS_MAP).unwrap()).unwrap();
        map.get(&(reason as u32), 0)
            .unwrap()
            .iter()
            .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
    }

    /// Runs `frame` and checks the verdict and that exactly `reason`
    /// counted it (one packet of its size), every other counter unmoved.
    pub fn expect(&self, what: &str, frame: &[u8], reason: Reason) {
        let before: Vec<(u64, u64)> = Reason::ALL.iter().map(|&r| self.counter(r)).collect();
        let want = if reason.is_pass() { XDP_PASS } else { XDP_DROP };
        assert_eq!(
            self.run(frame),
            want,
            "{what}: verdict (want {})",
            reason.name()
        );
        for (i, &r) in Reason::ALL.iter().enumerate() {
            let (p, b) = self.counter(r);
            let delta = (p - before[i].0, b - before[i].1);
            let expect = if r == reason {
                (1, frame.len() as u64)
            } else {
                (0, 0)
            };
            assert_eq!(delta, expect, "{what}: counter {}", r.name());
        }
    }

    /// Every reason's packet count.
    pub fn packet_counts(&self) -> Vec<u64> {
        Reason::ALL.iter().map(|&r| self.counter(r).0).collect()
    }
}

/// A validated policy from the body of a `[dos]` section.
pub fn dos_policy(dos: &str) -> DosPolicy {
    let text = format!("[gateway]\nlisten = \"127.0.0.1:1\"\n[dos]\n{dos}\n");
    Config::parse("test.toml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .dos
        .unwrap()
}

impl TestProgram {
    /// The program loaded with the policy of a `[dos]` section's body.
    pub fn configured(dos: &str) -> TestProgram {
        let prog = TestProgram::load();
        datapath::apply_policy(&prog.pins, Some(&dos_policy(dos))).unwrap();
        prog
    }
}
