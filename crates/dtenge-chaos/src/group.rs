//! Chaos for a replicated notary group (`--notary-replicas 3`): the leader is
//! killed again and again under load, followers are killed, one replica is
//! partitioned away from the others and healed, and at the end every
//! replica's state digest must be equal.
//!
//! ```text
//!  a round every 4–6 s (start to start), once no replica is out:
//!    most rounds: find the leader (Status, for up to 5 s) ─► SIGKILL it ─► probe until a new leader commits ─► failover ms
//!                 restart it 0.3–1 s later
//!    rounds 2, 7, 12 …: SIGKILL a follower, restart it 0.3–1 s later
//!    round 3: partition the leader from the other replicas for 3 s (cut-links file), probing it
//!             directly: it must acknowledge nothing; heal
//!    after a restart or a heal: wait until the replica is back in the group ─► rejoin ms
//!  end: Status of every replica until all report the same applied index and digest
//! ```
//!
//! One replica is out at a time (this round's, or the random killer's): a
//! replica counts as out until it is back in the group — serving, following
//! a leader, and caught up to where the others were when it came back
//! ([`back_in_group`]) — not merely until its process is started again, so
//! no kill ever leaves the group without a majority and each leader kill
//! times a failover, not a restart.
//!
//! The probe is a batch signed as a bank whose one claim spends a commitment
//! that never existed: it is refused, but only once its log entry is
//! committed, so its answer times the first commit of the new leader, and it
//! changes nothing the audit sees.
//!
//! The partition is the transport's fault layer ([`dtenge_net::CutLinks`]):
//! every service is started with `DTENGE_CUT_LINKS` naming one file, and the
//! chaos writes into it the links between the isolated replica and each of
//! the others; both ends then refuse to call across them, while the nodes
//! (and this harness) still reach every replica. So the isolated replica is
//! asked to notarise and must not answer with verdicts (the minority side
//! acknowledges nothing); the nodes' payments go to the majority's new
//! leader.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dtenge_crypto::{SecretKey, hash};
use dtenge_net::{Bus, BusExt, SystemClock};
use dtenge_notary::{
    InputOpening, NotariseBatch, NotaryAnswer, NotaryClient, NotaryRequest, NotaryStatus, TxClaim, Verdict,
};
use dtenge_types::{Commitment, ParticipantId, TimeWindow, TxId};

use crate::{ChaosError, Rng, Services, Tally};

/// What the group's chaos measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupOutcome {
    pub(crate) leader_kills: u64,
    pub(crate) failover_ms: Vec<u64>,
    pub(crate) isolations: u64,
    pub(crate) follower_kills: u64,
    /// Batches sent straight to a partitioned replica while it was cut off.
    pub(crate) minority_probes: u64,
    /// Of which answered with verdicts (must stay 0).
    pub(crate) minority_acknowledged: u64,
    pub(crate) problems: Vec<String>,
}

/// Asks `replica` where it stands.
pub(crate) async fn status(bus: &Arc<dyn Bus>, replica: &ParticipantId) -> Option<NotaryStatus> {
    match bus.request(replica, &NotaryRequest::Status).await {
        Ok(NotaryAnswer::Status(s)) => Some(s),
        _ => None,
    }
}

/// How long a round waits for a replica that says it leads: an election
/// (after a heal, or a restarted replica's) is the group's normal work, so
/// only a group with no leader for this long is a problem.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// The leader, as a running replica says (one that says it leads itself),
/// asked again until one does or [`LEADER_WAIT`] has passed.
async fn leader(bus: &Arc<dyn Bus>, replicas: &[ParticipantId]) -> Option<ParticipantId> {
    let since = Instant::now();
    loop {
        for r in replicas {
            if let Some(s) = status(bus, r).await
                && s.leader.as_ref() == Some(r)
            {
                return Some(r.clone());
            }
        }
        if since.elapsed() >= LEADER_WAIT {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Longest wait for a restarted or healed replica to be back in the group.
pub(crate) const REJOIN_WAIT: Duration = Duration::from_secs(30);

/// Waits until `replica` (just restarted, or healed) is back in the group:
/// it answers, follows a leader, and has applied every entry the other
/// replicas had applied when this was first asked. Returns how long that
/// took; `None` after [`REJOIN_WAIT`].
pub(crate) async fn back_in_group(
    bus: &Arc<dyn Bus>,
    replica: &ParticipantId,
    replicas: &[ParticipantId],
) -> Option<Duration> {
    let since = Instant::now();
    let mut target = 0;
    for other in replicas.iter().filter(|r| *r != replica) {
        if let Some(s) = status(bus, other).await {
            target = target.max(s.applied);
        }
    }
    while since.elapsed() < REJOIN_WAIT {
        if let Some(s) = status(bus, replica).await
            && s.leader.is_some()
            && s.applied >= target
        {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Records how long `replica` took to be back in the group (or that it was
/// not back in time), then lets the next replica go down.
pub(crate) async fn let_back(tally: &Tally, bus: &Arc<dyn Bus>, replica: &ParticipantId, replicas: &[ParticipantId]) {
    let back = back_in_group(bus, replica, replicas).await;
    {
        let mut rejoins = tally.rejoins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match back {
            Some(took) => rejoins.ms.push(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
            None => rejoins.late.push(replica.to_string()),
        }
    }
    tally.replica_down.store(false, Ordering::Relaxed);
}

/// A claim spending a commitment that does not exist (refused once committed).
fn probe_claim(rng: &mut Rng, host: &ParticipantId) -> Option<TxClaim> {
    let n = rng.next_u64().to_le_bytes();
    let now = dtenge_net::Clock::now(&SystemClock);
    let opening = InputOpening { host: host.clone(), sealed: hash(b"dtenge/chaos/probe-input", &[&n]) };
    Some(TxClaim {
        tx: TxId(hash(b"dtenge/chaos/probe-tx", &[&n])),
        inputs: vec![opening.commitment()].try_into().ok()?,
        outputs: vec![Commitment(hash(b"dtenge/chaos/probe-output", &[&n]))].try_into().ok()?,
        window: TimeWindow::starting(now, 60_000),
        openings: vec![opening].try_into().ok()?,
        consents: Default::default(),
    })
}

/// Probes until a batch is committed (answered with verdicts); the time it took.
async fn time_to_commit(client: &NotaryClient, rng: &mut Rng, since: Instant) -> Option<u64> {
    while since.elapsed() < Duration::from_secs(30) {
        let claim = probe_claim(rng, client.me())?;
        if let Ok(verdicts) = client.notarise(vec![claim]).await
            && matches!(verdicts.first(), Some(Verdict::Rejected(_)))
        {
            return u64::try_from(since.elapsed().as_millis()).ok();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Every 4–6 s kills the leader (most rounds) or a follower (restarting
/// it), partitions the leader away once (see the module docs); returns what
/// it measured when the load stops.
pub(crate) async fn leader_killer(
    seed: u64,
    services: &Services,
    tally: &Tally,
    replicas: &[ParticipantId],
    bus: Arc<dyn Bus>,
    key: Arc<SecretKey>,
    participants: &dtenge_net::Participants,
) -> Result<GroupOutcome, ChaosError> {
    let mut rng = Rng::new(seed);
    let client = NotaryClient::new(Arc::clone(&bus), key.clone(), participants);
    let mut outcome = GroupOutcome::default();
    let mut rounds = 0u64;
    let mut next = Instant::now() + Duration::from_millis(rng.range(4_000, 6_000));
    loop {
        while Instant::now() < next {
            if tally.stop.load(Ordering::Relaxed) {
                return Ok(outcome);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Rounds start 4–6 s apart, the wait for a replica to be back
        // included (a longer round starts the next at once), so a run keeps
        // its number of leader kills.
        next = Instant::now() + Duration::from_millis(rng.range(4_000, 6_000));
        rounds += 1;
        // This round's replica is taken out only once no other one is out.
        if !take_turn(tally).await {
            return Ok(outcome);
        }
        if rounds == 3 {
            partition_the_leader(services, tally, &bus, &key, replicas, &mut rng, &mut outcome).await?;
            continue;
        }
        let Some(leader) = leader(&bus, replicas).await else {
            tally.replica_down.store(false, Ordering::Relaxed);
            outcome.problems.push(format!("no replica said it leads for {LEADER_WAIT:?}"));
            continue;
        };
        if rounds % 5 == 2 {
            let Some(follower) = replicas.iter().find(|r| **r != leader) else {
                tally.replica_down.store(false, Ordering::Relaxed);
                continue;
            };
            services.kill(follower.as_str())?;
            outcome.follower_kills += 1;
            count_kill(tally, follower, "follower");
            tokio::time::sleep(Duration::from_millis(rng.range(300, 1_000))).await;
            services.spawn(follower.as_str())?;
            let_back(tally, &bus, follower, replicas).await;
            continue;
        }
        let victim = leader;
        services.kill(victim.as_str())?;
        let killed = Instant::now();
        outcome.leader_kills += 1;
        count_kill(tally, &victim, "leader");
        let restart = Duration::from_millis(rng.range(300, 1_000));
        let (measured, ()) = tokio::join!(time_to_commit(&client, &mut rng, killed), async {
            tokio::time::sleep(restart).await;
        });
        services.spawn(victim.as_str())?;
        let_back(tally, &bus, &victim, replicas).await;
        match measured {
            Some(ms) => outcome.failover_ms.push(ms),
            None => outcome.problems.push(format!("no batch committed within 30 s after {victim} was killed")),
        }
    }
}

fn count_kill(tally: &Tally, victim: &ParticipantId, what: &str) {
    tally.kills.fetch_add(1, Ordering::Relaxed);
    *tally.kills_by.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(victim.to_string()).or_default() +=
        1;
    *tally.last_kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!("{victim} ({what})"));
}

/// Waits until no replica is out, then marks this round's as out; false if
/// the run stopped first.
async fn take_turn(tally: &Tally) -> bool {
    while tally.replica_down.swap(true, Ordering::Relaxed) {
        if tally.stop.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Cuts the leader off from the other replicas for 3 s through the cut-links
/// file, asking it meanwhile to notarise probes directly: any verdict is a
/// minority acknowledging; then heals. The caller has taken the turn
/// ([`take_turn`]); the healed replica gives it back once it is back in the
/// group.
async fn partition_the_leader(
    services: &Services,
    tally: &Tally,
    bus: &Arc<dyn Bus>,
    key: &Arc<SecretKey>,
    replicas: &[ParticipantId],
    rng: &mut Rng,
    outcome: &mut GroupOutcome,
) -> Result<(), ChaosError> {
    let Some(isolated) = leader(bus, replicas).await else {
        tally.replica_down.store(false, Ordering::Relaxed);
        outcome.problems.push(format!("no replica said it leads for {LEADER_WAIT:?} (partition round)"));
        return Ok(());
    };
    let links: Vec<(ParticipantId, ParticipantId)> =
        replicas.iter().filter(|r| **r != isolated).map(|r| (isolated.clone(), r.clone())).collect();
    let file = services.cut_links_file();
    let io = |what: &str, source| ChaosError::Process { what: format!("{what} {}", file.display()), source };
    dtenge_net::CutLinks::write(&file, &links).map_err(|e| io("write", e))?;
    let cut_at = Instant::now();
    // Past the readers' re-read delay, every replica refuses the cut links.
    tokio::time::sleep(dtenge_net::CutLinks::REREAD * 2).await;
    while cut_at.elapsed() < Duration::from_secs(3) {
        let Some(claim) = probe_claim(rng, bus.me()) else { break };
        let Ok(batch) = NotariseBatch::signed(bus.me().clone(), vec![claim], key.as_ref()) else { break };
        outcome.minority_probes += 1;
        if let Ok(NotaryAnswer::Verdicts(v)) = bus.request(&isolated, &NotaryRequest::Notarise(batch)).await {
            outcome.minority_acknowledged += 1;
            outcome.problems.push(format!("{isolated}, cut off from the other replicas, answered verdicts {v:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", e)),
    }
    let_back(tally, bus, &isolated, replicas).await;
    outcome.isolations += 1;
    Ok(())
}

/// Waits until every replica reports the same applied index and state
/// digest (the load has stopped); false after 60 s.
pub(crate) async fn replicas_agree(bus: &Arc<dyn Bus>, replicas: &[ParticipantId]) -> (bool, String) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        let mut seen = Vec::new();
        for r in replicas {
            seen.push(status(bus, r).await);
        }
        let all: Vec<&NotaryStatus> = seen.iter().flatten().collect();
        if all.len() == replicas.len()
            && all.windows(2).all(|w| w[0].applied == w[1].applied && w[0].digest == w[1].digest)
        {
            return (true, String::new());
        }
        last = seen
            .iter()
            .zip(replicas)
            .map(|(s, r)| match s {
                Some(s) => format!("{r}: applied {} committed {} digest {}", s.applied, s.committed, s.digest.short()),
                None => format!("{r}: no answer"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (false, last)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_round_waits_while_a_replica_is_out_and_then_takes_its_turn() {
        let tally = Arc::new(Tally::default());
        tally.replica_down.store(true, Ordering::Relaxed);
        let waiting = tokio::spawn({
            let tally = Arc::clone(&tally);
            async move { take_turn(&tally).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "took a turn while another replica was out");
        tally.replica_down.store(false, Ordering::Relaxed);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap());
        assert!(tally.replica_down.load(Ordering::Relaxed), "the turn is held by the round that took it");
    }

    #[tokio::test]
    async fn a_round_waiting_for_its_turn_ends_when_the_run_stops() {
        let tally = Tally::default();
        tally.replica_down.store(true, Ordering::Relaxed);
        tally.stop.store(true, Ordering::Relaxed);
        assert!(!tokio::time::timeout(Duration::from_secs(5), take_turn(&tally)).await.unwrap());
    }
}
