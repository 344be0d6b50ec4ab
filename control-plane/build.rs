//! Rebuilds edgegw-cp when the console's built pages change: they are
//! embedded (`src/web/assets.rs`), and cargo does not otherwise watch a
//! folder outside the crate. Node.js is never needed here: without
//! `console/dist` the binary builds, and its pages say how to build them.

fn main() {
    let dist = std::path::Path::new("../console/dist");
    if dist.exists() {
        println!("cargo::rerun-if-changed=../console/dist");
    } else {
        // Watching the missing folder would rebuild every time; its parent
        // changes when the assets are built.
        println!("cargo::rerun-if-changed=../console");
    }
}
