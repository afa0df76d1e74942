//! Tests of the network model: timing, ordering, faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::state::host_index;
use super::*;

const LATENCY: Duration = Duration::from_millis(100);

/// Two hosts, 100 ms apart, 8 Mbit/s each (one byte per microsecond).
fn net() -> SimNet {
    let spec = HostSpec {
        region: 0,
        upload_bps: 8_000_000,
    };
    SimNet::new(1, Latency::Fixed(LATENCY), &[spec, spec])
}

async fn pair(net: &SimNet) -> (BoxStream, BoxStream) {
    let mut listener = net.transport(1).bind(host_addr(1)).await.unwrap();
    let client = net.transport(0).connect(host_addr(1)).await.unwrap();
    let (server, from) = listener.accept().await.unwrap();
    assert_eq!(from.ip(), host_addr(0).ip());
    (client, server)
}

#[tokio::test(start_paused = true)]
async fn a_write_arrives_after_its_transmission_time_plus_the_latency() {
    let net = net();
    let start = Instant::now();
    let (mut client, mut server) = pair(&net).await;
    assert_eq!(
        start.elapsed(),
        LATENCY * 2,
        "connecting takes a round trip"
    );
    let sent = Instant::now();
    client.write_all(&[7u8; 1_000]).await.unwrap();
    let mut got = [0u8; 1_000];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [7u8; 1_000]);
    assert_eq!(sent.elapsed(), Duration::from_millis(1) + LATENCY);
    assert_eq!(net.stats()[0].bytes_sent, 1_000);
}

#[tokio::test(start_paused = true)]
async fn one_uplink_is_shared_and_bytes_arrive_in_order() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    let sent = Instant::now();
    for i in 0..10u8 {
        client.write_all(&[i; 100]).await.unwrap();
    }
    let mut got = vec![0u8; 1_000];
    server.read_exact(&mut got).await.unwrap();
    for (i, chunk) in got.chunks(100).enumerate() {
        assert!(chunk.iter().all(|b| usize::from(*b) == i));
    }
    // 1,000 bytes through one 8 Mbit/s uplink, then the latency.
    assert_eq!(sent.elapsed(), Duration::from_millis(1) + LATENCY);
}

#[tokio::test(start_paused = true)]
async fn a_blocked_direction_holds_bytes_until_it_heals_and_refuses_dials() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    net.block(0, 1);
    client.write_all(b"held").await.unwrap();
    let mut got = [0u8; 4];
    let early = tokio::time::timeout(Duration::from_secs(30), server.read_exact(&mut got));
    assert!(early.await.is_err(), "nothing crosses a partition");
    // The other direction still works.
    server.write_all(b"back").await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"back");
    // Dials across it time out.
    let dial = net.transport(0).connect(host_addr(1)).await;
    assert_eq!(dial.err().unwrap().kind(), io::ErrorKind::TimedOut);
    let healed = Instant::now();
    net.unblock(0, 1);
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"held");
    assert_eq!(healed.elapsed(), LATENCY);
}

#[tokio::test(start_paused = true)]
async fn a_held_link_delivers_on_release() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    net.hold(0, 1);
    client.write_all(b"wait").await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    net.release(0, 1);
    let released = Instant::now();
    let mut got = [0u8; 4];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"wait");
    assert_eq!(released.elapsed(), LATENCY);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_host_holds_both_directions_until_each_stall_ends() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    // Two stalls overlap (two slow commits): the host is free once both
    // ended.
    net.stall(1);
    net.stall(1);
    client.write_all(b"in").await.unwrap();
    server.write_all(b"out").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.unstall(1);
    let mut got = [0u8; 2];
    let read = tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut got)).await;
    assert!(read.is_err(), "still held by the second stall");
    net.unstall(1);
    let released = Instant::now();
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"in");
    let mut back = [0u8; 3];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"out");
    assert_eq!(released.elapsed(), LATENCY);
}

#[tokio::test(start_paused = true)]
async fn a_crash_resets_connections_and_refuses_dials_until_restart() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    let crashed = Instant::now();
    net.crash(1);
    // The survivor reads the end of the stream one latency later.
    let mut buf = [0u8; 8];
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    assert_eq!(crashed.elapsed(), LATENCY);
    // The dead side can neither read nor write.
    assert!(server.write_all(b"x").await.is_err());
    assert!(server.read(&mut buf).await.is_err());
    let dial = net.transport(0).connect(host_addr(1)).await;
    assert_eq!(dial.err().unwrap().kind(), io::ErrorKind::ConnectionRefused);
    net.restart(1);
    let (_c, _s) = pair(&net).await;
}

/// (tokio's timers have millisecond resolution: a byte that takes a
/// microsecond to send is read at the next millisecond.)
#[tokio::test(start_paused = true)]
async fn a_spike_multiplies_the_latency() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    net.spike(1, 10.0);
    let sent = Instant::now();
    client.write_all(&[1]).await.unwrap();
    let mut got = [0u8; 1];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(sent.elapsed(), LATENCY * 10 + Duration::from_millis(1));
    net.heal_all();
    let sent = Instant::now();
    client.write_all(&[2]).await.unwrap();
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(sent.elapsed(), LATENCY + Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn an_empty_write_is_not_the_end_of_the_stream() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    assert_eq!(client.write(&[]).await.unwrap(), 0);
    client.write_all(b"x").await.unwrap();
    let mut got = [0u8; 1];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"x");
}

#[tokio::test(start_paused = true)]
async fn a_writer_stalls_while_its_bytes_are_held_and_resumes_after() {
    let net = net();
    let (mut client, mut server) = pair(&net).await;
    net.block(0, 1);
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..4 {
        client.write_all(&chunk).await.unwrap();
    }
    let stalled = tokio::time::timeout(Duration::from_secs(60), client.write_all(&chunk));
    assert!(stalled.await.is_err(), "4 MiB unread: the writer waits");
    net.unblock(0, 1);
    let reader = tokio::spawn(async move {
        let mut all = vec![0u8; 5 << 20];
        server.read_exact(&mut all).await.map(|_| all.len())
    });
    client.write_all(&chunk).await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap(), 5 << 20);
}

#[test]
fn host_addresses_round_trip() {
    for i in [0, 1, 254, 255, 256, 70_000] {
        assert_eq!(host_index(host_addr(i).ip()), Some(i));
    }
    assert_eq!(host_index("127.0.0.1".parse().unwrap()), None);
}

#[tokio::test(start_paused = true)]
async fn a_busy_hosts_bytes_leave_after_its_work_and_are_read_once_decoded() {
    use crate::cpu::{CostModel, SimCpu};
    use p2p_node::cpu::{Cpu, Work};

    let net = net();
    let cpus = [0, 1].map(|h| {
        let cpu = Arc::new(SimCpu::new(CostModel::reference(), 1.0, 1));
        net.set_cpu(h, cpu.clone());
        cpu
    });
    let (mut client, mut server) = pair(&net).await;
    let write = |n| Work {
        encoded_bytes: n,
        ..Work::default()
    };
    let read = |n| Work {
        decoded_bytes: n,
        ..Work::default()
    };
    // Idle: the bytes wait only for their encoding and decoding.
    let sent = Instant::now();
    client.write_all(&[7u8; 1_000]).await.unwrap();
    let mut got = [0u8; 1_000];
    server.read_exact(&mut got).await.unwrap();
    let idle = cpus[0].cost(&write(1_000)) + Duration::from_millis(1) + LATENCY;
    let idle = idle + cpus[1].cost(&read(1_000));
    let took = sent.elapsed();
    // tokio's timers fire on whole milliseconds.
    assert!(
        took >= idle && took <= idle + Duration::from_millis(1),
        "{took:?} {idle:?}"
    );
    // Busy with a block of 700 transactions: its bytes leave after it.
    let block = Work {
        blocks: 1,
        txs: 700,
        batched_signatures: 700,
        hashed_bytes: 200_000,
        ..Work::default()
    };
    let sent = Instant::now();
    cpus[0].charge(block);
    client.write_all(&[8u8; 1_000]).await.unwrap();
    server.read_exact(&mut got).await.unwrap();
    let busy = idle + cpus[0].cost(&block);
    let took = sent.elapsed();
    assert!(
        took >= busy && took <= busy + Duration::from_millis(1),
        "{took:?} {busy:?}"
    );
    assert!(cpus[0].cost(&block) > Duration::from_millis(7));
}
