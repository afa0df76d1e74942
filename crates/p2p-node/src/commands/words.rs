//! Answers in words: accounts by their dev names, transactions and
//! contract histories as sentences, times as dates.

use escrow::{Action, Address, Contract, Party, Payload, State, dev};
use p2p_node::api_types::TxAnswer;

/// An address as its dev name, or in hex.
pub(crate) fn who(address: &Address) -> String {
    dev::name_of(address).map_or_else(|| address.to_string(), str::to_string)
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
pub(crate) fn contract_text(c: &Contract) -> String {
    let mut out = contract_line(c);
    out.push_str(&format!(
        "\ndelivery deadline: block {}; dispute window: {} blocks",
        c.delivery_deadline, c.dispute_window
    ));
    for h in &c.history {
        out.push_str("\n  ");
        out.push_str(&history_line(h.action, &h.by, h.height));
    }
    out
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
