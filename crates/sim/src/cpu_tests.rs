//! The processor model: costs from counts, queued per core.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn block(txs: u64) -> Work {
    Work {
        blocks: 1,
        txs,
        batched_signatures: txs,
        hashed_bytes: txs * 250,
        ..Work::default()
    }
}

#[tokio::test(start_paused = true)]
async fn twice_the_work_takes_twice_the_time_and_queues_behind_the_first() {
    let cpu = SimCpu::new(CostModel::reference(), 1.0, 1);
    let one = Work {
        signatures: 3,
        decoded_bytes: 1_000,
        ..Work::default()
    };
    assert_eq!(cpu.cost(&(one + one)), cpu.cost(&one) * 2);
    let now = Instant::now();
    let first = cpu.charge(block(700));
    assert_eq!(first, now + cpu.cost(&block(700)));
    // One core: the next piece of work waits for it.
    let second = cpu.charge(one);
    assert_eq!(second, first + cpu.cost(&one));
    assert_eq!(cpu.idle_at(now), second);
    assert_eq!(cpu.busy(), cpu.cost(&block(700)) + cpu.cost(&one));
}

#[tokio::test(start_paused = true)]
async fn two_nodes_with_the_same_work_finish_at_the_same_instant() {
    let (a, b) = (
        SimCpu::new(CostModel::reference(), 1.0, 1),
        SimCpu::new(CostModel::reference(), 1.0, 1),
    );
    assert_eq!(a.charge(block(100)), b.charge(block(100)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(a.charge(block(3)), b.charge(block(3)));
}

#[tokio::test(start_paused = true)]
async fn half_the_speed_doubles_every_cost() {
    let reference = SimCpu::new(CostModel::reference(), 1.0, 1);
    let slow = SimCpu::new(CostModel::reference(), 0.5, 1);
    for work in [
        block(700),
        Work {
            commits: 1,
            committed_bytes: 535_000,
            ..Work::default()
        },
        Work {
            encoded_bytes: 80,
            ..Work::default()
        },
    ] {
        let (r, s) = (reference.cost(&work), slow.cost(&work));
        assert!(s.abs_diff(r * 2) <= Duration::from_nanos(1), "{s:?} {r:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn two_cores_run_two_pieces_at_once_and_what_follows_all_waits_for_both() {
    let cpu = SimCpu::new(CostModel::reference(), 1.0, 2);
    let now = Instant::now();
    let a = cpu.charge(block(100));
    let b = cpu.charge(block(100));
    assert_eq!(a, b, "side by side");
    let write = Work {
        encoded_bytes: 100,
        ..Work::default()
    };
    assert_eq!(cpu.after_all(&write, now), a + cpu.cost(&write));
    cpu.reset(now);
    assert_eq!(cpu.idle_at(now), now);
}

#[test]
fn a_cost_table_is_read_from_a_file_and_refused_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("costs.json");
    let mut slow = CostModel::reference();
    slow.signature_ns = 94_000.0;
    std::fs::write(&path, serde_json::to_string(&slow).unwrap()).unwrap();
    assert_eq!(CostModel::load(&path).unwrap(), slow);
    slow.tx_ns = -1.0;
    std::fs::write(&path, serde_json::to_string(&slow).unwrap()).unwrap();
    assert!(CostModel::load(&path).unwrap_err().contains("tx_ns"));
    std::fs::write(&path, r#"{"signature_ns": 1}"#).unwrap();
    assert!(CostModel::load(&path).unwrap_err().contains("not valid"));
    assert!(CostModel::load(&dir.path().join("none.json")).is_err());
}
