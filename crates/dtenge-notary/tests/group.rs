//! The notary as a replicated group, in one process over the platform's
//! in-process network: every replica applies the same log and agrees; a
//! killed leader is replaced and nothing acknowledged is lost; the minority
//! side of a partition acknowledges nothing; a wiped replica rejoins from a
//! snapshot; a replica is replaced by a new member; a replica whose disk
//! fails stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtenge_crypto::{PublicKey, SecretKey, Signer};
use dtenge_net::{
    Clock, Fate, FaultPlan, FaultyNetwork, LocalNetwork, ManualClock, NoEvidence, ParticipantInfo, Participants, Role,
};
use dtenge_notary::group::replica::{GroupOptions, NotaryReplica, ReplicaStores};
use dtenge_notary::*;
use dtenge_store::{Journal, MemJournalHandle};
use dtenge_types::ParticipantId;

mod support;
use support::{NOW, c, claim, t, wait_until};

const REPLICAS: u64 = 4;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn replica_id(n: u64) -> ParticipantId {
    pid(&format!("NOTARY-{n}"))
}

fn key_of(name: &str) -> Arc<SecretKey> {
    let mut seed = [7u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    Arc::new(SecretKey::from_seed(seed))
}

/// Cuts the links between the replicas in `isolated` and the other replicas.
#[derive(Default)]
struct Cuts {
    isolated: Mutex<Vec<ParticipantId>>,
}

impl FaultPlan for Cuts {
    fn fate(&self, from: &ParticipantId, to: &ParticipantId) -> Fate {
        let isolated = self.isolated.lock().unwrap();
        if isolated.contains(from) != isolated.contains(to) { Fate::Cut } else { Fate::Deliver }
    }
}

struct Member {
    node: u64,
    id: ParticipantId,
    log: MemJournalHandle,
    snapshots: MemJournalHandle,
    cold: MemoryCold,
    replica: Option<Arc<NotaryReplica>>,
}

struct Group {
    network: Arc<LocalNetwork>,
    faulty: Arc<FaultyNetwork>,
    cuts: Arc<Cuts>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    members: Vec<Member>,
    options: GroupOptions,
    config: NotaryConfig,
}

/// The deployment's heartbeat and election timeouts (the failover figures
/// are theirs), snapshots often.
fn options() -> GroupOptions {
    let deployed = GroupOptions::default();
    GroupOptions {
        heartbeat_ms: deployed.heartbeat_ms,
        election_ms: deployed.election_ms,
        snapshot_every: Some(30),
        keep_after_snapshot: 0,
        commit_timeout: Duration::from_secs(2),
    }
}

impl Group {
    async fn new() -> Group {
        let mut list = vec![
            ParticipantInfo {
                id: pid("NBK"),
                name: "NBK".into(),
                role: Role::Nbk,
                public_key: key_of("NBK").public_key(),
                endpoint: None,
                tls_key: None,
            },
            ParticipantInfo {
                id: pid("STB1"),
                name: "STB1".into(),
                role: Role::Stb,
                public_key: key_of("STB1").public_key(),
                endpoint: None,
                tls_key: None,
            },
        ];
        for n in 1..=REPLICAS {
            let id = replica_id(n);
            list.push(ParticipantInfo {
                id: id.clone(),
                name: id.to_string(),
                role: Role::Notary,
                public_key: key_of(id.as_str()).public_key(),
                endpoint: None,
                tls_key: None,
            });
        }
        let participants = Arc::new(Participants::new(list));
        let clock: Arc<dyn Clock> = ManualClock::new(NOW);
        let network = LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), Arc::new(NoEvidence));
        let cuts = Arc::new(Cuts::default());
        let faulty = FaultyNetwork::new(Arc::clone(&network), cuts.clone());
        let config = NotaryConfig {
            generation_entries: 4,
            generation_ms: 1_000,
            filter_bytes: 1 << 16,
            ..NotaryConfig::default()
        };
        let mut group =
            Group { network, faulty, cuts, participants, clock, members: Vec::new(), options: options(), config };
        for n in 1..=REPLICAS {
            let (_, log) = Journal::in_memory();
            let (_, snapshots) = Journal::in_memory();
            group.members.push(Member {
                node: n,
                id: replica_id(n),
                log,
                snapshots,
                cold: MemoryCold::new(),
                replica: None,
            });
        }
        let first: BTreeMap<u64, ParticipantId> = (1..=3).map(|n| (n, replica_id(n))).collect();
        for n in 1..=3 {
            group.start(n).await;
            group.replica(n).initialize(&first).await.unwrap();
        }
        group
    }

    fn member(&mut self, n: u64) -> &mut Member {
        self.members.iter_mut().find(|m| m.node == n).unwrap()
    }

    fn replica(&self, n: u64) -> Arc<NotaryReplica> {
        self.members.iter().find(|m| m.node == n).and_then(|m| m.replica.clone()).expect("replica running")
    }

    /// Starts (or restarts after a crash) replica `n` over what its disks kept.
    async fn start(&mut self, n: u64) {
        let (participants, clock, options, config) =
            (Arc::clone(&self.participants), Arc::clone(&self.clock), self.options, self.config);
        let faulty = Arc::clone(&self.faulty);
        let network = Arc::clone(&self.network);
        let member = self.member(n);
        let key = key_of(member.id.as_str());
        let stores = ReplicaStores {
            log: member.log.crash_and_reopen(),
            snapshots: member.snapshots.crash_and_reopen(),
            cold: Arc::new(ColdStore::memory(member.cold.clone(), 1 << 16)),
            config,
        };
        let bus = faulty.bus(member.id.clone(), key.clone());
        network.heal(&member.id);
        let replica =
            NotaryReplica::start(n, member.id.clone(), key.clone(), participants, clock, bus, stores, options)
                .await
                .unwrap();
        network.register(member.id.clone(), key, replica.clone());
        member.replica = Some(replica);
    }

    /// Kills replica `n` as kill -9 would: unreachable at once (until it
    /// starts again), its tasks stopped, what its disks had not synced lost
    /// at the next start.
    async fn kill(&mut self, n: u64) {
        self.vanish(n).await.unwrap();
    }

    /// The first half of [`Group::kill`]: replica `n` is unreachable at
    /// once; its tasks stop in the returned task (as the process's memory
    /// would vanish), which must end before it starts again.
    fn vanish(&mut self, n: u64) -> tokio::task::JoinHandle<()> {
        let member = self.member(n);
        let id = member.id.clone();
        let replica = member.replica.take().expect("running");
        self.network.partition(&id);
        tokio::spawn(async move {
            let _ = replica.raft().shutdown().await;
        })
    }

    /// Replaces replica `n`'s disks by empty ones (its data directory wiped).
    fn wipe(&mut self, n: u64) {
        let member = self.member(n);
        member.log = Journal::in_memory().1;
        member.snapshots = Journal::in_memory().1;
        member.cold = MemoryCold::new();
    }

    fn client(&self, as_: &str) -> NotaryClient {
        let key = key_of(as_);
        let bus = self.network.bus(pid(as_), key.clone());
        NotaryClient::new(bus, key, &self.participants)
    }

    fn running(&self) -> Vec<Arc<NotaryReplica>> {
        self.members.iter().filter_map(|m| m.replica.clone()).collect()
    }

    /// The leader of the newest term: a deposed leader that has not yet
    /// heard of its successor still says it leads.
    async fn leader(&self) -> Arc<NotaryReplica> {
        for _ in 0..400 {
            let leaders = self.running().into_iter().filter(|r| r.is_leader());
            if let Some(l) = leaders.max_by_key(|r| r.raft().metrics().borrow().current_term) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no leader elected");
    }

    /// Waits until the running replicas in `of` have applied the same entries, then returns their digests.
    async fn agreed(&self, of: &[u64]) -> Vec<dtenge_crypto::Digest> {
        for _ in 0..500 {
            let replicas: Vec<_> = of.iter().map(|n| self.replica(*n)).collect();
            let applied: Vec<u64> = replicas.iter().map(|r| r.applied_index()).collect();
            if applied.windows(2).all(|w| w[0] == w[1]) {
                let digests: Vec<_> = replicas.iter().map(|r| r.state_digest()).collect();
                if digests.windows(2).all(|w| w[0] == w[1]) {
                    return digests;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("replicas {of:?} did not converge");
    }
}

fn committed(v: &Verdict) -> &Receipt {
    match v {
        Verdict::Committed(r) => r,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

fn group_keys() -> Vec<PublicKey> {
    (1..=REPLICAS).map(|n| key_of(replica_id(n).as_str()).public_key()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_commits_batches_and_every_replica_agrees() {
    let group = Group::new().await;
    let nbk = group.client("NBK");
    let issued = nbk.notarise(vec![claim(1, &[], &[10, 11, 12])]).await.unwrap();
    let receipt = committed(&issued[0]);
    nbk.verify(receipt, &claim(1, &[], &[10, 11, 12])).unwrap();
    assert!(group_keys().contains(&receipt.notary), "signed by a replica of the group");
    let stb = group.client("STB1");
    let spent = stb.notarise(vec![claim(2, &[10], &[20]), claim(3, &[10], &[21])]).await.unwrap();
    committed(&spent[0]);
    assert_eq!(
        spent[1],
        Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: c(10), spent_by: t(2) }),
        "the double spend inside one batch names the first spender"
    );
    group.agreed(&[1, 2, 3]).await;
    for r in group.running() {
        r.with_state(|s| {
            assert_eq!(s.engine.status(&c(10)), Some(Err(t(2))), "{}: 10 spent by 2", r.id());
            assert_eq!(s.engine.status(&c(20)), Some(Ok(())), "{}: 20 unspent", r.id());
        });
    }
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_ten_times_loses_no_acknowledged_spend() {
    let mut group = Group::new().await;
    let nbk = group.client("NBK");
    let outputs: Vec<u64> = (100..140).collect();
    committed(&nbk.notarise(vec![claim(1, &[], &outputs)]).await.unwrap()[0]);
    let stb = group.client("STB1");
    let mut acknowledged = Vec::new();
    let mut failover_ms = Vec::new();
    for round in 0..10u64 {
        // A spend acknowledged by the current leader…
        let tx = 10 + round;
        let receipt =
            committed(&stb.notarise(vec![claim(tx, &[100 + round], &[200 + round])]).await.unwrap()[0]).clone();
        acknowledged.push((tx, receipt));
        // …the leader dies…
        let leader = group.leader().await.node_id();
        let killed_at = Instant::now();
        let stopping = group.vanish(leader);
        // …and the next batch is committed by a new leader.
        let next = 30 + round;
        let receipt =
            committed(&stb.notarise(vec![claim(next, &[120 + round], &[220 + round])]).await.unwrap()[0]).clone();
        let took = killed_at.elapsed().as_millis();
        println!("kill {round}: replica {leader} → next batch committed after {took} ms");
        failover_ms.push(took);
        acknowledged.push((next, receipt));
        stopping.await.unwrap();
        group.start(leader).await;
    }
    failover_ms.sort_unstable();
    println!("failover (kill → next committed batch) over 10 kills, ms: p50 {} max {}", failover_ms[5], failover_ms[9]);
    // Every acknowledged spend is there, and a retry gets the same receipt body.
    for (tx, receipt) in &acknowledged {
        let input = if *tx < 30 { 100 + tx - 10 } else { 120 + tx - 30 };
        let output = if *tx < 30 { 200 + tx - 10 } else { 220 + tx - 30 };
        let again = stb.notarise(vec![claim(*tx, &[input], &[output])]).await.unwrap();
        assert_eq!(committed(&again[0]).body, receipt.body, "tx {tx}: the same receipt body");
        let thief = stb.notarise(vec![claim(900 + tx, &[input], &[999])]).await.unwrap();
        assert_eq!(
            thief[0],
            Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: c(input), spent_by: t(*tx) })
        );
    }
    group.agreed(&[1, 2, 3]).await;
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_knows_which_replica_is_unreachable_and_when_it_is_back() {
    let mut group = Group::new().await;
    let nbk = group.client("NBK");
    committed(&nbk.notarise(vec![claim(1, &[], &[10, 11])]).await.unwrap()[0]);
    let leader = group.leader().await;
    assert_eq!(leader.unreachable(), Vec::<ParticipantId>::new(), "every replica answers");
    let follower = (1..=3).find(|n| replica_id(*n) != *leader.id()).unwrap();
    group.kill(follower).await;
    // The leader's next heartbeat to it fails; the group goes on with two.
    let noticed = wait_until(|| leader.unreachable() == vec![replica_id(follower)]).await;
    assert!(noticed, "the leader lists {} as unreachable: {:?}", replica_id(follower), leader.unreachable());
    committed(&nbk.notarise(vec![claim(2, &[], &[12])]).await.unwrap()[0]);
    group.start(follower).await;
    let back = wait_until(|| leader.unreachable().is_empty()).await;
    assert!(back, "the restarted replica answers again: {:?}", leader.unreachable());
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minority_side_of_a_partition_acknowledges_nothing() {
    let group = Group::new().await;
    let nbk = group.client("NBK");
    committed(&nbk.notarise(vec![claim(1, &[], &[10, 11])]).await.unwrap()[0]);
    let old = group.leader().await;
    group.cuts.isolated.lock().unwrap().push(old.id().clone());
    // A node that still reaches the isolated old leader gets no verdict from it.
    let batch = NotariseBatch::signed(pid("STB1"), vec![claim(2, &[10], &[20])], key_of("STB1").as_ref()).unwrap();
    let answer = old.notarise(&pid("STB1"), batch).await;
    assert!(
        matches!(answer, Err(NotaryCallError::NoQuorum(_)) | Err(NotaryCallError::NotLeader(_))),
        "the minority acknowledged: {answer:?}"
    );
    // The majority elects a leader and serves; the node's client finds it.
    let spent = group.client("STB1").notarise(vec![claim(3, &[10], &[30])]).await.unwrap();
    committed(&spent[0]);
    // Healed: the old leader drops what it never committed and agrees.
    group.cuts.isolated.lock().unwrap().clear();
    group.agreed(&[1, 2, 3]).await;
    old.with_state(|s| {
        assert_eq!(s.engine.committed(&t(2)), None, "the minority's batch never committed");
        assert_eq!(s.engine.status(&c(10)), Some(Err(t(3))));
    });
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_replica_rejoins_from_a_snapshot_with_the_whole_history() {
    let mut group = Group::new().await;
    let nbk = group.client("NBK");
    let outputs: Vec<u64> = (100..160).collect();
    committed(&nbk.notarise(vec![claim(1, &[], &outputs)]).await.unwrap()[0]);
    let leader = group.leader().await.node_id();
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    group.kill(follower).await;
    group.wipe(follower);
    // Enough entries for snapshots and purges: the wiped replica cannot catch up from the log.
    let stb = group.client("STB1");
    for i in 0..60u64 {
        committed(&stb.notarise(vec![claim(10 + i, &[100 + i], &[300 + i])]).await.unwrap()[0]);
    }
    group.start(follower).await;
    let others: Vec<u64> = (1..=3).collect();
    group.agreed(&others).await;
    // Its history came with the snapshot: old spends are still conflicts there.
    group.replica(follower).with_state(|s| {
        for i in 0..60u64 {
            assert_eq!(s.engine.status(&c(100 + i)), Some(Err(t(10 + i))), "spend {i} known after rejoining");
        }
        assert!(s.engine.committed(&t(10)).is_some());
    });
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_replaced_by_a_new_member() {
    let mut group = Group::new().await;
    let nbk = group.client("NBK");
    committed(&nbk.notarise(vec![claim(1, &[], &[10, 11, 12])]).await.unwrap()[0]);
    group.start(4).await;
    let first = group.leader().await.node_id();
    let leaving = (1..=3).find(|n| *n != first).unwrap();
    // Under load a leader can be deposed while the change runs (the failure
    // this test once showed 1 run in 10): as an operator would, the change
    // runs again on whichever replica leads now, which completes it.
    let mut attempts = 0;
    loop {
        let leader = group.leader().await;
        match leader.replace_member(4, &replica_id(4), Some(leaving)).await {
            Ok(()) => break,
            Err(e) => {
                attempts += 1;
                eprintln!("replace on {} failed: {e}", leader.id());
                assert!(attempts < 5, "the change did not complete in 5 attempts: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    group.kill(leaving).await;
    let stb = group.client("STB1");
    committed(&stb.notarise(vec![claim(2, &[10], &[20])]).await.unwrap()[0]);
    let members: Vec<u64> = (1..=4).filter(|n| *n != leaving).collect();
    group.agreed(&members).await;
    let voters: Vec<u64> =
        group.leader().await.raft().metrics().borrow().membership_config.membership().voter_ids().collect();
    assert_eq!(voters, members);
    for r in group.running() {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_fails_stops_and_the_group_goes_on() {
    let mut group = Group::new().await;
    let nbk = group.client("NBK");
    committed(&nbk.notarise(vec![claim(1, &[], &[10, 11])]).await.unwrap()[0]);
    let leader = group.leader().await;
    let broken = leader.node_id();
    group.member(broken).log.fail_next_sync();
    // The broken leader cannot make the batch durable: it answers nothing
    // committed itself; the client finds the new leader.
    let spent = group.client("STB1").notarise(vec![claim(2, &[10], &[20])]).await.unwrap();
    committed(&spent[0]);
    let new = group.leader().await;
    assert_ne!(new.node_id(), broken, "the replica with the failed disk no longer leads");
    assert!(leader.raft().metrics().borrow().running_state.is_err(), "the broken replica stopped");
    for r in group.running() {
        let _ = r.shutdown().await;
    }
}
