//! The shipped XDP program (the object embedded in `edgegw`), loaded
//! unattached for BPF_PROG_TEST_RUN.

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp},
};
use gateway_common::{COUNTERS_MAP, Counter, PROGRAM_NAME, Reason};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

pub struct TestProgram {
    pub ebpf: Ebpf,
}

impl TestProgram {
    /// Loads and verifies the program; its maps are private to this test.
    pub fn load() -> TestProgram {
        let mut ebpf = Ebpf::load(edgegw::EBPF_OBJECT).expect("parsing the embedded XDP object");
        let prog: &mut Xdp = ebpf.program_mut(PROGRAM_NAME).unwrap().try_into().unwrap();
        prog.load().expect("the verifier accepts the XDP program");
        TestProgram { ebpf }
    }

    fn program(&self) -> &Xdp {
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

    /// Every reason's packet count.
    pub fn packet_counts(&self) -> Vec<u64> {
        Reason::ALL.iter().map(|&r| self.counter(r).0).collect()
    }
}
