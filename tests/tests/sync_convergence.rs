//! Devices that edit the same traders, sessions and interviews offline,
//! with wrong clocks, and sync in random orders with the real server over
//! HTTP: afterwards every device holds exactly what the server holds for
//! it, with the same conflicts, and the server holds every op once.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed unwrap is a failed test

use mpaka_simulator::{SimConfig, run};
use mpaka_tests::TestServer;

#[test]
fn five_devices_with_conflicting_offline_work_converge_with_the_server() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let report = run(&SimConfig {
        devices: 5,
        days: 3,
        seed: 7,
        servers: vec![server.url.clone()],
        admin_token: Some(server.admin_token.clone()),
        actions_per_day: 25,
        syncs_per_day: 3,
        unreliable: false,
        wrong_clocks: true,
        store_dir: Some(dir.path().to_owned()),
        ..SimConfig::default()
    })
    .unwrap();
    println!("{report}");
    assert!(report.converged(), "{report}");
    assert_eq!(report.rejected, 0, "{report}");
    assert!(report.open_conflicts > 0, "the work overlaps on purpose: {report}");

    // Every op written on a device reached the server, once.
    let project = server.project_store();
    let held = project.ops_after(0, usize::MAX).unwrap();
    let mut ids: Vec<_> = held.iter().map(|(_, op)| op.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), held.len());
    // The auditor device the simulation enrolled to compare writes nothing.
    assert_eq!(held.len() as u64, report.ops_written, "{report}");
}
