//! The eclipse attack (`eclipse.rs`): attacker hosts take a victim's
//! connections through the node's own address gossip, the report shows
//! each victim's peers (how much of its outbound side the attacker held,
//! when and how long it was eclipsed), the double spend is reported, and
//! when the attack ends the whole network agrees again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sim::world::{Eclipse, SimOptions, Stop, run};

/// Ten nodes, two seeds each, a minute per block, no load; the last two
/// attacked by 16 hosts with 50 addresses each, the others restarting
/// every 10 minutes on average.
fn attacked(seed: u64) -> SimOptions {
    let mut o = SimOptions::new(10, seed);
    o.seeds_per_node = 2;
    o.block_interval = Duration::from_secs(60);
    o.tx_rate = 0.0;
    o.stop = Stop::Duration(Duration::from_secs(3600));
    o.ping_interval = Duration::from_secs(120);
    o.idle_timeout = Duration::from_secs(1200);
    o.eclipse = Some(Eclipse {
        hosts: 16,
        addrs: 800,
        victims: 2,
        churn: Duration::from_secs(600),
        power: 0.3,
        confirmations: 1,
    });
    o
}

#[test]
fn the_report_shows_the_victims_peers_and_the_network_agrees_after() {
    let out = run(&attacked(1)).unwrap();
    let r = &out.report;
    assert_eq!(r.violation, None, "{:?}", r.violation);
    assert!(
        r.settled_after_heal_s.is_some(),
        "every node agrees after the attack"
    );
    let e = r.eclipse.as_ref().unwrap();
    println!("{}", serde_json::to_string_pretty(e).unwrap());
    assert_eq!(e.time_to_eclipse_s.len(), 2);
    assert!(e.attacker_connections > 0);
    // The attacker's addresses, told to the victims, won most of their
    // outbound slots as the honest peers restarted.
    for share in &e.outbound_held_share {
        assert!(*share > 0.5 && *share <= 1.0, "{share}");
    }
    // Whatever else happened, the figures agree with each other.
    assert_eq!(e.eclipsed, e.time_to_eclipse_s.iter().flatten().count());
    for (t, longest) in e.time_to_eclipse_s.iter().zip(&e.longest_eclipse_s) {
        assert_eq!(t.is_some(), *longest > 0.0);
    }
    if let Some(d) = &e.double_spend {
        assert!((8..10).contains(&d.victim));
        assert!(e.time_to_eclipse_s[d.victim - 8].is_some());
        // Unless the victim saw the payment, the attempt never got it
        // onto any chain that lasted.
        if d.confirmed_at_s.is_none() {
            assert!(d.payment_reverted);
        }
    }
}

#[test]
fn an_eclipse_run_is_the_same_bytes_for_the_same_seed() {
    let mut o = attacked(3);
    o.stop = Stop::Duration(Duration::from_secs(1200));
    let a = run(&o).unwrap();
    let b = run(&o).unwrap();
    assert_eq!(
        serde_json::to_string(&a.report).unwrap(),
        serde_json::to_string(&b.report).unwrap()
    );
}

#[test]
fn the_eclipses_options_are_checked() {
    let bad = [
        Eclipse {
            hosts: 0,
            ..attacked(1).eclipse.unwrap()
        },
        Eclipse {
            addrs: 10,
            ..attacked(1).eclipse.unwrap()
        },
        Eclipse {
            victims: 9,
            ..attacked(1).eclipse.unwrap()
        },
        Eclipse {
            power: 1.0,
            ..attacked(1).eclipse.unwrap()
        },
        Eclipse {
            confirmations: 0,
            ..attacked(1).eclipse.unwrap()
        },
    ];
    for e in bad {
        let mut o = attacked(1);
        o.eclipse = Some(e);
        assert!(run(&o).is_err(), "{e:?}");
    }
    let mut loaded = attacked(1);
    loaded.tx_rate = 1.0;
    assert!(run(&loaded).is_err(), "an eclipse runs without load");
}
