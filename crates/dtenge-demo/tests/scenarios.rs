//! Every scenario passes, end to end (the acceptance test of SPEC §8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_of_the_seed_passes_including_what_must_fail() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dtenge_demo::run(Some(dir.path()), &[], |_| {}).await.unwrap();
    assert_eq!(reports.len(), dtenge_demo::scenarios::all().len());
    for r in &reports {
        for s in &r.steps {
            assert!(s.passed, "{} / {}: {}", r.name, s.title, s.outcome);
        }
        assert!(r.passed, "{}", r.name);
        assert!(
            r.steps.iter().any(|s| s.expect == "refused" || s.title.contains("refused")),
            "{} tries nothing that must fail",
            r.name
        );
    }
}

#[tokio::test]
async fn one_scenario_can_be_run_by_name_and_unknown_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dtenge_demo::run(Some(dir.path()), &["digital-vat".to_string()], |_| {}).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].passed);
    let err = dtenge_demo::run(Some(dir.path()), &["no-such".to_string()], |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("digital-vat"), "the error lists the scenarios: {err}");
}

#[tokio::test]
async fn the_qr_merchant_scenario_pays_once_and_refuses_expired_and_tampered_qrs() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dtenge_demo::run(Some(dir.path()), &["qr-merchant".to_string()], |_| {}).await.unwrap();
    assert_eq!(reports.len(), 1);
    for s in &reports[0].steps {
        assert!(s.passed, "{}: {}", s.title, s.outcome);
    }
    assert_eq!(reports[0].steps.iter().filter(|s| s.expect != "ok").count(), 3, "three refusals");
    assert!(reports[0].passed);
}
