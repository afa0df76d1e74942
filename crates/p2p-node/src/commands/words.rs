//! Answers in words: accounts by their dev names, transactions and
//! contract histories as sentences, times as dates.

use escrow::{Action, Address, Contract, Party, Payload, State, dev};
use p2p_node::api_types::TxAnswer;

/// An address as its dev name, or in hex.
pub(crate) fn who(address: &Address) -> String {
    dev::name_of(address)
        .map(str::to_string)
        .or_else(|| super::keyring::name_of(address))
        .unwrap_or_else(|| address.to_string())
}

/// `text` with every dev account's address (64 hex digits, or the short
/// 8-digit form followed by `…`) replaced by the account's name.
pub(crate) fn name_dev_accounts(text: &str) -> String {
    let mut out = text.to_string();
    for name in dev::DEV_ACCOUNTS {
        if let Some(a) = dev::address(name) {
            out = out
                .replace(&a.to_string(), name)
                .replace(&format!("{}…", a.short()), name);
        }
    }
    out
}

/// A party in words.
fn party(p: Party) -> &'static str {
    match p {
        Party::Buyer => "the buyer",
        Party::Seller => "the seller",
    }
}

/// A memo in words: its text when it is short printable UTF-8, else its
/// size.
fn memo_words(memo: &escrow::Memo) -> String {
    match std::str::from_utf8(memo.as_bytes()) {
        Ok(text) if text.len() <= 80 && !text.chars().any(char::is_control) => {
            format!("with the memo {text:?}")
        }
        _ => format!("with a memo of {} bytes", memo.len()),
    }
}

/// What a transaction does, in one sentence, with its fee and fee rate
/// when it is signed.
pub(crate) fn describe(tx: &TxAnswer) -> String {
    match tx {
        TxAnswer::Signed {
            sender,
            payload,
            fee,
            fee_rate,
            ..
        } => {
            let from = who(sender);
            let what = match payload {
                Payload::Transfer { to, amount } => format!("{from} pays {amount} to {}", who(to)),
                Payload::EscrowCreate {
                    seller,
                    arbiter,
                    amount,
                    delivery_deadline,
                    dispute_window,
                } => format!(
                    "{from} locks {amount} for {} with arbiter {} (delivery by block {delivery_deadline}, dispute window {dispute_window} blocks)",
                    who(seller),
                    who(arbiter)
                ),
                Payload::ConfirmDelivery { contract } => {
                    format!("{from} confirms delivery of contract {contract}")
                }
                Payload::RaiseDispute { contract } => {
                    format!("{from} disputes contract {contract}")
                }
                Payload::Resolve { contract, to } => {
                    format!("{from} resolves contract {contract} to {}", party(*to))
                }
                Payload::RefundBuyer { contract } => {
                    format!("{from} refunds the buyer of contract {contract}")
                }
                Payload::TransferMemo { to, amount, memo } => {
                    format!("{from} pays {amount} to {} {}", who(to), memo_words(memo))
                }
            };
            format!("{what}; fee {fee} ({fee_rate}/kB)")
        }
        TxAnswer::Coinbase { to, height, .. } => {
            format!("the reward of block {height} to {}", who(to))
        }
        TxAnswer::Network {
            name,
            coinbase_reward,
            ..
        } => format!("the network `{name}`, block reward {coinbase_reward}"),
        TxAnswer::Allocation { to, amount, .. } => {
            format!("{amount} to {} at genesis", who(to))
        }
    }
}

/// A contract's state in a few words.
pub(crate) fn state_name(state: State) -> String {
    match state {
        State::Disputed { since } => format!("Disputed since block {since}"),
        other => other.name().to_string(),
    }
}

/// A history entry in words: `resolved to the buyer by eve in block 6`.
pub(crate) fn history_line(action: Action, by: &Address, height: u64) -> String {
    let what = match action {
        Action::Created => "created and funded".to_string(),
        Action::DeliveryConfirmed => "delivery confirmed".to_string(),
        Action::DisputeRaised => "disputed".to_string(),
        Action::Resolved(p) => format!("resolved to {}", party(p)),
        Action::Refunded => "refunded to the buyer".to_string(),
    };
    format!("{what} by {} in block {height}", who(by))
}

/// One line per contract, for `contracts` and atop `contract`.
pub(crate) fn contract_line(c: &Contract) -> String {
    format!(
        "{}  {:<22} {} from {} to {} (arbiter {})",
        c.id,
        state_name(c.state),
        c.amount,
        who(&c.buyer),
        who(&c.seller),
        who(&c.arbiter),
    )
}

/// A contract with its deadlines and history.
pub(crate) fn contract_text(c: &Contract, height: u64) -> String {
    let mut out = contract_line(c);
    out.push_str(&format!(
        "\ndelivery deadline: block {}; dispute window: {} blocks; the chain is at block {height}",
        c.delivery_deadline, c.dispute_window
    ));
    for line in who_may_act(c, height) {
        out.push_str("\nnow: ");
        out.push_str(&line);
    }
    for h in &c.history {
        out.push_str("\n  ");
        out.push_str(&history_line(h.action, &h.by, h.height));
    }
    out
}

/// When the buyer may take the refund alone: in a block after block
/// `after`; in words, from the chain's `height` (the next block is
/// `height + 1`).
fn refund_after(after: u64, height: u64) -> String {
    if height >= after {
        format!("the buyer may take the refund (the next block is after block {after})")
    } else {
        let short = after - height;
        let blocks = if short == 1 {
            "1 more block is".to_string()
        } else {
            format!("{short} more blocks are")
        };
        format!("the buyer may take the refund in a block after block {after}, once {blocks} mined")
    }
}

/// Who may do what to `c` now, at `height` (`docs/ESCROW.md`, "Who may do
/// what, and when"): one line per party's possibility.
pub(crate) fn who_may_act(c: &Contract, height: u64) -> Vec<String> {
    let (buyer, seller, arbiter) = (who(&c.buyer), who(&c.seller), who(&c.arbiter));
    match c.state {
        State::Funded => vec![
            format!("the buyer ({buyer}) may confirm delivery, paying the seller"),
            format!("the buyer ({buyer}) or the seller ({seller}) may raise a dispute"),
            format!("the seller ({seller}) may refund the buyer"),
            refund_after(c.delivery_deadline, height),
        ],
        State::Disputed { since } => vec![
            format!("the arbiter ({arbiter}) may resolve it to either party"),
            format!("the seller ({seller}) may refund the buyer"),
            refund_after(since.saturating_add(c.dispute_window), height),
        ],
        State::Released | State::Refunded => {
            vec!["nothing: the contract is final".to_string()]
        }
    }
}

/// Milliseconds since the Unix epoch as a UTC date and time
/// (`2026-01-01 00:00:00 UTC`).
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_act_follows_the_state_and_the_height() {
        let (alice, bob, eve) = (
            escrow::dev::address("alice").unwrap_or_else(|| unreachable!()),
            escrow::dev::address("bob").unwrap_or_else(|| unreachable!()),
            escrow::dev::address("eve").unwrap_or_else(|| unreachable!()),
        );
        let mut c = Contract {
            id: escrow::ContractId::from_tx(&chain_core::TxId::ZERO),
            buyer: alice,
            seller: bob,
            arbiter: eve,
            amount: escrow::Amount::new(10),
            delivery_deadline: 10,
            dispute_window: 5,
            state: State::Funded,
            history: Vec::new(),
        };
        let funded = who_may_act(&c, 8).join("\n");
        assert!(
            funded.contains("the buyer (alice) may confirm delivery"),
            "{funded}"
        );
        assert!(funded.contains("once 2 more blocks are mined"), "{funded}");
        assert!(
            who_may_act(&c, 9)
                .join(" ")
                .contains("once 1 more block is mined")
        );
        assert!(
            who_may_act(&c, 10)
                .join(" ")
                .contains("the next block is after block 10")
        );
        c.state = State::Disputed { since: 12 };
        let disputed = who_may_act(&c, 12).join("\n");
        assert!(
            disputed.contains("the arbiter (eve) may resolve it"),
            "{disputed}"
        );
        assert!(
            disputed.contains("after block 17, once 5 more blocks"),
            "{disputed}"
        );
        c.state = State::Released;
        assert_eq!(who_may_act(&c, 99), ["nothing: the contract is final"]);
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc(escrow::genesis::DEV_GENESIS_TIME_MS),
            "2026-01-01 00:00:00 UTC"
        );
        assert_eq!(utc(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03 UTC");
        // The largest timestamp does not overflow.
        assert!(utc(u64::MAX).ends_with("UTC"));
    }

    #[test]
    fn dev_addresses_are_named_in_messages_in_both_forms() {
        let alice = dev::address("alice").unwrap_or_else(|| Address::from_bytes([0; 32]));
        let text = format!("{alice} is not the buyer; {}… neither", alice.short());
        assert_eq!(
            name_dev_accounts(&text),
            "alice is not the buyer; alice neither"
        );
        let stranger = Address::from_bytes([7; 32]);
        assert_eq!(
            name_dev_accounts(&stranger.to_string()),
            stranger.to_string()
        );
    }

    #[test]
    fn every_history_action_reads_as_words() {
        let eve = dev::address("eve").unwrap_or_else(|| Address::from_bytes([0; 32]));
        assert_eq!(
            history_line(Action::Resolved(Party::Buyer), &eve, 6),
            "resolved to the buyer by eve in block 6"
        );
        for action in [
            Action::Created,
            Action::DeliveryConfirmed,
            Action::DisputeRaised,
            Action::Resolved(Party::Seller),
            Action::Refunded,
        ] {
            let line = history_line(action, &eve, 1);
            assert!(
                line.ends_with("by eve in block 1") && !line.contains('{'),
                "{line}"
            );
        }
    }
}
