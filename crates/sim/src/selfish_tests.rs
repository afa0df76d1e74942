//! SM1's decisions, state by state (Eyal and Sirer's Algorithm 1), and
//! the closed form.

use chain_core::BlockHash;

use super::{Act, Sm1, closed_form_revenue};

fn h(n: u8) -> BlockHash {
    BlockHash::from_bytes([n; 32])
}

#[test]
fn a_find_with_no_lead_is_withheld_and_the_node_mines_on_it() {
    let mut sm = Sm1::new(h(0), 10);
    assert_eq!(sm.found(h(1)), Act::Wait);
    assert_eq!((sm.parent(), sm.height(), sm.withheld()), (h(1), 11, 1));
}

#[test]
fn an_honest_block_with_no_lead_is_adopted() {
    let mut sm = Sm1::new(h(0), 10);
    assert_eq!(sm.public_tip(h(9), 11), Act::Adopt);
    assert_eq!((sm.parent(), sm.height()), (h(9), 11));
}

#[test]
fn a_lead_of_one_matched_races_and_the_next_pool_block_wins_at_once() {
    let mut sm = Sm1::new(h(0), 10);
    sm.found(h(1));
    // The honest block at 11: publish ours, race (state 0').
    assert_eq!(sm.public_tip(h(9), 11), Act::Publish(vec![h(1)]));
    assert!(sm.racing);
    // The pool's own node may prefer its block (smaller hash): still racing.
    assert_eq!(sm.public_tip(h(1), 11), Act::Wait);
    assert!(sm.racing);
    // The pool finds on its block: published at once.
    assert_eq!(sm.found(h(2)), Act::Publish(vec![h(2)]));
    assert!(!sm.racing);
    // The node follows: a new base, nothing withheld.
    assert_eq!(sm.public_tip(h(2), 12), Act::Wait);
    assert_eq!((sm.parent(), sm.height(), sm.withheld()), (h(2), 12, 0));
}

#[test]
fn a_race_lost_or_won_by_an_honest_block_is_adopted() {
    for next in [h(8), h(7)] {
        let mut sm = Sm1::new(h(0), 10);
        sm.found(h(1));
        sm.public_tip(h(9), 11);
        // The next honest block, on either racer, is a longer chain.
        assert_eq!(sm.public_tip(next, 12), Act::Adopt);
        assert_eq!((sm.parent(), sm.height(), sm.racing), (next, 12, false));
    }
}

#[test]
fn a_lead_of_two_cut_to_one_publishes_everything() {
    let mut sm = Sm1::new(h(0), 10);
    sm.found(h(1));
    sm.found(h(2));
    assert_eq!(sm.public_tip(h(9), 11), Act::Publish(vec![h(1), h(2)]));
    assert!(!sm.racing);
    assert_eq!(sm.public_tip(h(2), 12), Act::Wait);
    assert_eq!((sm.parent(), sm.withheld()), (h(2), 0));
}

#[test]
fn a_longer_lead_publishes_one_block_per_honest_block() {
    let mut sm = Sm1::new(h(0), 10);
    for i in 1..=4 {
        sm.found(h(i));
    }
    assert_eq!(sm.public_tip(h(9), 11), Act::Publish(vec![h(1)]));
    // The node may switch to the pool's published block: nothing changes.
    assert_eq!(sm.public_tip(h(1), 11), Act::Wait);
    assert_eq!(sm.public_tip(h(8), 12), Act::Publish(vec![h(2)]));
    // Lead of two cut to one: all of it.
    assert_eq!(sm.public_tip(h(7), 13), Act::Publish(vec![h(3), h(4)]));
    assert_eq!(sm.withheld(), 0);
}

#[test]
fn a_second_honest_block_at_a_published_height_changes_nothing() {
    let mut sm = Sm1::new(h(0), 10);
    sm.found(h(1));
    sm.public_tip(h(9), 11);
    assert_eq!(sm.public_tip(h(8), 11), Act::Wait);
    assert!(sm.racing);
}

#[test]
fn the_closed_form_matches_eyal_and_sirer() {
    // γ = 0: profitable above α = 1/3; γ = 1: above 0; γ = 1/2: above 1/4.
    for (gamma, threshold) in [(0.0, 1.0 / 3.0), (0.5, 0.25), (1.0, 0.0)] {
        let above = threshold + 0.01;
        assert!(closed_form_revenue(above, gamma) > above, "γ {gamma}");
        if threshold > 0.0 {
            let below = threshold - 0.01;
            assert!(closed_form_revenue(below, gamma) < below, "γ {gamma}");
        }
    }
    // Their figure: α = 1/3, γ = 0 earns exactly its share.
    assert!((closed_form_revenue(1.0 / 3.0, 0.0) - 1.0 / 3.0).abs() < 1e-12);
}
