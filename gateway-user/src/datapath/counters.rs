//! Reading the per-reason counters from the pinned `COUNTERS` map.

use aya::maps::{Map, MapData, PerCpuArray};
use gateway_common::{COUNTERS_MAP, Counter, Reason};

use super::{DatapathError, PinDir};

/// Totals for one reason, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReasonTotals {
    pub packets: u64,
    pub bytes: u64,
}

/// Reads every reason's totals from the pinned map of `dir`.
pub fn read_counters(dir: &PinDir) -> Result<Vec<(Reason, ReasonTotals)>, DatapathError> {
    let path = dir.map(COUNTERS_MAP);
    if !path.exists() {
        return Err(DatapathError::NotPinned {
            iface: dir.iface.clone(),
            dir: dir.path.clone(),
        });
    }
    let data =
        MapData::from_pin(&path).map_err(|e| DatapathError::ebpf("opening the counters map", e))?;
    let map: PerCpuArray<MapData, Counter> = PerCpuArray::try_from(Map::PerCpuArray(data))
        .map_err(|e| DatapathError::ebpf("opening the counters map", e))?;
    Reason::ALL
        .iter()
        .map(|&reason| {
            let per_cpu = map
                .get(&(reason as u32), 0)
                .map_err(|e| DatapathError::ebpf("reading the counters map", e))?;
            let totals = per_cpu
                .iter()
                .fold(ReasonTotals::default(), |acc, c| ReasonTotals {
                    packets: acc.packets + c.packets,
                    bytes: acc.bytes + c.bytes,
                });
            Ok((reason, totals))
        })
        .collect()
}
