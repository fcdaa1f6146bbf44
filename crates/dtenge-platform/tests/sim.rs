//! Deterministic simulation: many seeds of a random workload under message
//! loss, lost answers, duplicates, late and reordered delivery, cut links
//! and service restarts; each run ends healed and audited (see
//! `dtenge_platform::sim`). A failing seed is printed; replay it with
//! `DTENGE_SIM_SEED=<seed> cargo test -p dtenge-platform --test sim`.
//! `DTENGE_SIM_SEEDS=<n>` runs more seeds, `DTENGE_SIM_STEPS=<n>` longer
//! workloads, `DTENGE_SIM_FAULTS=<per mille>` sets every fault rate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_platform::sim::{self, SimConfig, SimReport};

async fn run(config: &SimConfig) -> SimReport {
    let dir = tempfile::tempdir().unwrap();
    match sim::run(config, dir.path()).await {
        Ok(report) => report,
        Err(failure) => {
            for line in &failure.trace_tail {
                eprintln!("{line}");
            }
            panic!("{failure}");
        }
    }
}

/// The suite's configuration for `seed`, adjusted by the environment.
fn config(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    if let Some(steps) = std::env::var("DTENGE_SIM_STEPS").ok().and_then(|s| s.parse().ok()) {
        config.steps = steps;
    }
    if let Some(rate) = std::env::var("DTENGE_SIM_FAULTS").ok().and_then(|s| s.parse().ok()) {
        config.faults = sim::FaultRates { lose_request: rate, lose_answer: rate, duplicate: rate, delay: rate };
    }
    config
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("DTENGE_SIM_SEED") {
        return vec![seed.trim().parse().expect("DTENGE_SIM_SEED is a number")];
    }
    let n: u64 = std::env::var("DTENGE_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    (1..=n).map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D)).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn every_seed_keeps_the_money_invariants_under_faults() {
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    let mut network = Vec::new();
    for seed in seeds() {
        eprintln!("sim seed {seed}");
        let report = run(&config(seed)).await;
        for (k, v) in &report.counts {
            *totals.entry(k.clone()).or_default() += v;
        }
        network.push(report.network.clone());
        eprintln!(
            "  {} acknowledged, {} committed, {} trace lines, digest {}",
            report.acknowledged, report.committed, report.trace_lines, report.digest
        );
    }
    eprintln!("operations over all seeds: {totals:#?}");
    // The runs did exercise the faults they claim to (not a test that cannot fail).
    let sum = |f: fn(&dtenge_net::FaultStats) -> u64| network.iter().map(f).sum::<u64>();
    eprintln!(
        "network over {} seeds: delivered {}, cut {}, lost requests {}, lost answers {}, duplicated {} (refused {}, \
         admitted {}), held {} (late accepted {}, late refused {})",
        network.len(),
        sum(|s| s.delivered),
        sum(|s| s.cut),
        sum(|s| s.lost_requests),
        sum(|s| s.lost_answers),
        sum(|s| s.duplicated),
        sum(|s| s.duplicates_refused),
        sum(|s| s.duplicates_admitted),
        sum(|s| s.held),
        sum(|s| s.late_accepted),
        sum(|s| s.late_refused),
    );
    if std::env::var("DTENGE_SIM_SEED").is_err() {
        assert!(sum(|s| s.lost_requests) > 0 && sum(|s| s.lost_answers) > 0, "losses happened");
        assert!(sum(|s| s.duplicates_refused) > 0, "duplicates happened and were refused");
        assert!(sum(|s| s.late_accepted) > 0, "late deliveries happened");
        assert!(sum(|s| s.cut) > 0, "partitions happened");
        assert!(totals.get("pay ok").copied().unwrap_or(0) > 0, "payments went through");
        assert!(totals.keys().any(|k| k.starts_with("double-spend rejected")), "double spends were tried");
        assert!(totals.get("restart").copied().unwrap_or(0) > 0, "services restarted");
        // Another bank held a lease on a DA its bank unlinked (the audit
        // checks that none believed it afterwards).
        assert!(totals.get("unlink (leased) ok").copied().unwrap_or(0) > 0, "a leased DA was unlinked");
        // A pay-back comes from a client who holds coin, and never asks for
        // more than it holds (only a non-holder's is refused for funds).
        assert!(totals.get("stablecoin pay back ok").copied().unwrap_or(0) > 0, "stablecoin was paid back");
        assert_eq!(totals.get("stablecoin pay back refused: insufficient funds"), None, "a holder paid back in full");
        // The workload mostly does what the coin held allows: refusals are
        // the exception. Funds in flight do not count: that refusal is the
        // faults' (an earlier payment under review until the notary is
        // reached again), and harsher fault rates make more of them.
        let coin = |outcome: &str| {
            totals
                .iter()
                .filter(|(k, _)| k.starts_with("stablecoin ") && k.contains(outcome) && !k.ends_with("funds_in_flight"))
                .map(|(_, v)| v)
                .sum::<u64>()
        };
        assert!(coin(" ok") > 3 * coin(" refused"), "stablecoin: {} ok, {} refused", coin(" ok"), coin(" refused"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_seed_gives_the_same_trace() {
    let config = SimConfig { steps: 80, ..SimConfig::new(7) };
    let a = run(&config).await;
    let b = run(&config).await;
    if a.digest != b.digest {
        for (i, (x, y)) in a.trace.iter().zip(b.trace.iter()).enumerate() {
            if x != y {
                panic!("traces diverge at line {i}:\n  {x}\n  {y}");
            }
        }
        panic!("traces differ in length: {} vs {}", a.trace.len(), b.trace.len());
    }
    assert_eq!(a.network, b.network);
    // And a different seed gives a different run.
    let c = run(&SimConfig { seed: 8, ..config }).await;
    assert_ne!(a.digest, c.digest);
}

/// The notary as a group of 3 replicas (openraft) under the same workload,
/// with faults on the replicas' own messages (lost requests and answers,
/// duplicates), a replica isolated from the others now and then, replicas
/// restarted: every seed audited as above, the replicas agree at the end.
/// `DTENGE_SIM_GROUP_SEEDS=<n>` runs
/// more seeds. One thread, as above: the simulation's own concurrent calls
/// (and so its generator's draws) keep their order; openraft's tasks run
/// whenever the workload awaits.
#[tokio::test(flavor = "current_thread")]
async fn a_replicated_notary_keeps_the_invariants_under_faults_on_its_own_messages() {
    let n: u64 = std::env::var("DTENGE_SIM_GROUP_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let group_config = |seed: u64| SimConfig { notary_replicas: 3, steps: 150, ..config(seed) };
    let mut group = sim::GroupFaultStats::default();
    for i in 1..=n {
        let seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let report = run(&group_config(seed)).await;
        eprintln!(
            "group seed {seed}: {} acknowledged, {} committed, digest {}, group {:?}",
            report.acknowledged, report.committed, report.digest, report.group
        );
        let g = &report.group;
        group.delivered += g.delivered;
        group.cut += g.cut;
        group.lost_requests += g.lost_requests;
        group.lost_answers += g.lost_answers;
        group.duplicated += g.duplicated;
        group.isolations += g.isolations;
        group.restarts += g.restarts;
        assert!(report.acknowledged > 0, "seed {seed}: payments went through the group");
    }
    eprintln!("group messages over {n} seeds: {group:?}");
    assert!(
        group.lost_requests > 0 && group.lost_answers > 0 && group.duplicated > 0,
        "the group's messages met faults"
    );
    assert!(group.restarts + group.isolations > 0, "replicas were restarted or isolated");
    // No replay check here: with a group, who leads and when is openraft's
    // (real-time timers), and an operation's outcome can depend on it (seen:
    // a seed whose second run gave another digest); docs/reliability-sim.md.
}
