//! The scenarios: the seed's 2024 scenarios (Tab. 5), the applications it
//! studies (vouchers, crowdfunding, escrow, taxi split, health insurance) and
//! the 2025 plan's cross-border PvP, and the 2023 experiment's DT-backed
//! stablecoin. Each follows the seed's step list and
//! tries what must fail. Every operation is a request to the platform's HTTP
//! API through the typed client ([`crate::runner::Api`]) as the participant
//! that performs it: the bank or the Treasury for its customers' DAs, NBK for
//! conversions, the event providers for the oracle's registries. One
//! operation has no API route open to its actor and stays on the node
//! interface: the foreign central bank issuing its currency.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use dtenge_node::RefusalCode;
use dtenge_node::accounts::{AccountId, HolderKind};
use dtenge_node::cards::ResponseCode;
use dtenge_node::service::PayTo;
use dtenge_oracle::OracleCode;
use dtenge_platform::spec::ids;
use dtenge_types::{Address, Amount, CbsRef, Timestamp};

use dtenge_client::{EventKindDto, NotificationKind};

use crate::runner::{ContractSpec, Ctx, Da, DemoError, Event, Refused, ScenarioReport, StepReport};

type Run = for<'a> fn(&'a mut Ctx) -> Pin<Box<dyn Future<Output = Result<(), DemoError>> + 'a>>;

/// A scenario.
pub struct Scenario {
    /// Short name.
    pub name: &'static str,
    /// Title.
    pub title: &'static str,
    /// What it does.
    pub run: Run,
}

/// Every scenario, in the order the demo runs them.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "national-fund",
            title: "Targeted use of funds from the National Fund (marking by address)",
            run: |c| Box::pin(national_fund(c)),
        },
        Scenario {
            name: "road-repairs",
            title: "Intermediary road repairs (marking by parameter, Smart Contract Portal)",
            run: |c| Box::pin(road_repairs(c)),
        },
        Scenario {
            name: "farm-animals",
            title: "Purchase of farm animals (holding, released by IFA)",
            run: |c| Box::pin(farm_animals(c)),
        },
        Scenario {
            name: "investment-subsidies",
            title: "Investment subsidies of the Ministry of Agriculture (holding, 180-day expiry)",
            run: |c| Box::pin(investment_subsidies(c)),
        },
        Scenario {
            name: "digital-vat",
            title: "Digital VAT (1 120/120 → 560/60 → tax authority)",
            run: |c| Box::pin(digital_vat(c)),
        },
        Scenario {
            name: "cryptocard",
            title: "Cryptocard (debit mandate on the exchange's DA)",
            run: |c| Box::pin(cryptocard(c)),
        },
        Scenario {
            name: "vouchers",
            title: "Digital vouchers (school → canteen per confirmed meal)",
            run: |c| Box::pin(vouchers(c)),
        },
        Scenario {
            name: "crowdfunding",
            title: "Crowdfunding (target met; target missed and refunded)",
            run: |c| Box::pin(crowdfunding(c)),
        },
        Scenario {
            name: "escrow",
            title: "Escrow for real estate (released on title transfer)",
            run: |c| Box::pin(escrow(c)),
        },
        Scenario {
            name: "taxi-split",
            title: "Taxi fare split (one payment, three recipients)",
            run: |c| Box::pin(taxi_split(c)),
        },
        Scenario {
            name: "health-insurance",
            title: "Health insurance purpose payment (licensed clinics only)",
            run: |c| Box::pin(health_insurance(c)),
        },
        Scenario {
            name: "cross-border-pvp",
            title: "Cross-border PvP (DT against a second central bank's currency)",
            run: |c| Box::pin(cross_border(c)),
        },
        Scenario {
            name: "offline-p2p",
            title: "Offline device-to-device payments (two phones, no network; a cloned purse caught)",
            run: |c| Box::pin(crate::offline::offline_p2p(c)),
        },
        Scenario {
            name: "card-payment",
            title: "A bank card linked to a DA (ISO 8583 messages from the card network simulator)",
            run: |c| Box::pin(card_payment(c)),
        },
        Scenario {
            name: "stablecoin",
            title: "DT-backed stablecoin (mint against DT, pay, redeem; proof of reserves)",
            run: |c| Box::pin(stablecoin(c)),
        },
        Scenario {
            name: "qr-merchant",
            title: "QR payment at a shop (dynamic QR signed by the shop's bank; expired and tampered QRs refused)",
            run: |c| Box::pin(qr_merchant(c)),
        },
    ]
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap_or(Amount::MAX)
}

fn id<T>(r: Result<T, dtenge_types::TypesError>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(e.to_string()))
}

fn addr(da: &Da) -> Result<Address, DemoError> {
    da.address.parse().map_err(|e: dtenge_types::TypesError| DemoError::Step(format!("{}: {e}", da.address)))
}

async fn national_fund(c: &mut Ctx) -> Result<(), DemoError> {
    let ga = c.open_da("GA (National Fund programme)", ids::TREASURY, HolderKind::GovernmentAgency, 10_000_000).await?;
    let gc = c.open_da("General contractor", "STB1", HolderKind::LegalEntity, 0).await?;
    let sub = c.open_da("Subcontractor A", "STB2", HolderKind::LegalEntity, 0).await?;
    let sub_b = c.open_da("Subcontractor B", "STB3", HolderKind::LegalEntity, 0).await?;
    let supplier = c.open_da("Supplier (end)", "STB3", HolderKind::LegalEntity, 0).await?;
    let outsider = c.open_da("Unintended recipient", "STB2", HolderKind::LegalEntity, 0).await?;
    let (treasury, stb1, stb2) = (c.api(ids::TREASURY)?, c.api("STB1")?, c.api("STB2")?);
    let (t, g, k, a, b, s) = (treasury.clone(), ga.clone(), gc.clone(), sub.clone(), sub_b.clone(), supplier.clone());
    c.step("1. GA marks 10 000 000 DT to the general contractor: depth 2, level 1 {A, B} ≤ 6 000 000, level 2 {supplier} ≤ 3 000 000", &["GA (National Fund programme)", "General contractor"], || async move {
        t.mark_address(&g, &k, 10_000_000, "NF-2026-INFRA-01", &[(&[&a, &b][..], 6_000_000), (&[&s][..], 3_000_000)]).await
    })
    .await;
    let (s1, k, a) = (stb1.clone(), gc.clone(), sub.clone());
    let paid = c
        .step(
            "2. The contractor pays Subcontractor A (level 1) 4 000 000",
            &["General contractor", "Subcontractor A"],
            || async move { s1.pay_marked(&k, &[(&a, 4_000_000)]).await },
        )
        .await;
    if let Some(p) = &paid {
        let copy = treasury.client().transaction(&p.tx).await;
        c.check(
            "3. The Treasury (initiator's node) holds a traceability copy",
            &[],
            copy.as_ref().is_ok_and(|t| t.direction == "incoming"),
            format!("{copy:?}"),
        )
        .await;
    }
    let (s1, k, o) = (stb1.clone(), gc.clone(), outsider.clone());
    c.refused(
        "4. The contractor tries to pay an unintended recipient: refused, funds stay",
        &["General contractor", "Unintended recipient"],
        RefusalCode::Rule(802),
        || async move { s1.pay_marked(&k, &[(&o, 1_000_000)]).await },
    )
    .await;
    let (s1, k, b) = (stb1.clone(), gc.clone(), sub_b.clone());
    c.refused(
        "5. The contractor tries to pay Subcontractor B 2 500 000: over the level-1 limit (2 000 000 left)",
        &["General contractor", "Subcontractor B"],
        RefusalCode::MarkingLimit,
        || async move { s1.pay_marked(&k, &[(&b, 2_500_000)]).await },
    )
    .await;
    let (s2, a, s) = (stb2.clone(), sub.clone(), supplier.clone());
    c.step(
        "6. Subcontractor A pays the supplier (level 2, last) 2 500 000: the marking is removed",
        &["Subcontractor A", "Supplier (end)"],
        || async move { s2.pay_marked(&a, &[(&s, 2_500_000)]).await },
    )
    .await;
    let (s2, a, s) = (stb2.clone(), sub.clone(), supplier.clone());
    c.refused(
        "7. Subcontractor A pays the supplier 1 000 000 more: over its share of the level-2 limit",
        &["Subcontractor A", "Supplier (end)"],
        RefusalCode::MarkingLimit,
        || async move { s2.pay_marked(&a, &[(&s, 1_000_000)]).await },
    )
    .await;
    let standard = c.balance("Supplier (end)", "standard").await;
    c.check(
        "8. The end supplier holds 2 500 000 standard DT it may convert",
        &["Supplier (end)"],
        standard == dt(2_500_000).tiyn(),
        format!("{standard} tiyn"),
    )
    .await;
    Ok(())
}

async fn road_repairs(c: &mut Ctx) -> Result<(), DemoError> {
    let ga = c.open_da("GA (road fund)", ids::TREASURY, HolderKind::GovernmentAgency, 50_000_000).await?;
    let gc = c.open_da("General contractor", "STB1", HolderKind::LegalEntity, 0).await?;
    let sub = c.open_da("Subcontractor", "STB2", HolderKind::LegalEntity, 0).await?;
    let asphalt = c.open_da("Asphalt supplier (end)", "STB3", HolderKind::LegalEntity, 0).await?;
    let bank = c.adopt_institution("Subcontractor's bank (STB2)", "STB2-DA").await?;
    const PARAMETER: &str = "GZ-2026-ROAD-17";
    let portal = c.api("PORTAL")?;
    let registered = portal.register_parameter(PARAMETER, &ga, "Repair of the A-2 road").await;
    c.check(
        "1. The Smart Contract Portal registers state order GZ-2026-ROAD-17 on the oracle",
        &[],
        registered.is_ok(),
        format!("{registered:?}"),
    )
    .await;
    let (t, g, k) = (c.api(ids::TREASURY)?, ga.clone(), gc.clone());
    c.step(
        "2. The GA marks 30 000 000 DT with the parameter to the general contractor",
        &["GA (road fund)", "General contractor"],
        || async move { t.mark_parameter(&g, &k, 30_000_000, PARAMETER).await },
    )
    .await;
    let until = c.now().plus_days(365);
    let c1 = ContractSpec {
        number: "C-1",
        parameter: PARAMETER,
        sender: &gc,
        recipient: &sub,
        max_transfer: 20_000_000,
        max_cashout: 5_000_000,
        valid_until: until,
        final_recipient: false,
    };
    let c2 = ContractSpec {
        number: "C-2",
        parameter: PARAMETER,
        sender: &sub,
        recipient: &asphalt,
        max_transfer: 8_000_000,
        max_cashout: 0,
        valid_until: until,
        final_recipient: true,
    };
    let portal_result = async {
        portal.register_contract(&c1).await?;
        portal.register_contract(&c2).await
    }
    .await;
    c.check("3. The Portal registers contracts C-1 (contractor → subcontractor, ≤ 20 000 000, cash-out ≤ 5 000 000) and C-2 (subcontractor → asphalt supplier, final, ≤ 8 000 000)", &[], portal_result.is_ok(), format!("{portal_result:?}")).await;
    let (stb1, stb2) = (c.api("STB1")?, c.api("STB2")?);
    let (s, k, u) = (stb1.clone(), gc.clone(), sub.clone());
    c.step(
        "4. The contractor pays the subcontractor 15 000 000 under C-1 (oracle-attested)",
        &["General contractor", "Subcontractor"],
        || async move { s.contract_payment(&k, PARAMETER, "C-1", &u, 15_000_000, false).await },
    )
    .await;
    let (s, k, u) = (stb1.clone(), gc.clone(), sub.clone());
    c.refused(
        "5. 6 000 000 more under C-1 would exceed its 20 000 000 maximum",
        &["General contractor", "Subcontractor"],
        RefusalCode::OracleRefused,
        || async move { s.contract_payment(&k, PARAMETER, "C-1", &u, 6_000_000, false).await },
    )
    .await;
    let (s, u, a) = (stb2.clone(), sub.clone(), asphalt.clone());
    c.step(
        "6. The subcontractor pays the asphalt supplier 8 000 000 under C-2: the end supplier gets standard DT",
        &["Subcontractor", "Asphalt supplier (end)"],
        || async move { s.contract_payment(&u, PARAMETER, "C-2", &a, 8_000_000, false).await },
    )
    .await;
    let (s, u, b) = (stb2.clone(), sub.clone(), bank.clone());
    c.step(
        "7. The subcontractor cashes out 5 000 000 through its bank under C-1",
        &["Subcontractor", "Subcontractor's bank (STB2)"],
        || async move { s.contract_payment(&u, PARAMETER, "C-1", &b, 5_000_000, true).await },
    )
    .await;
    let (s, u, b) = (stb2.clone(), sub.clone(), bank.clone());
    c.refused(
        "8. Another 1 000 000 cash-out is over the 5 000 000 cash-out cap",
        &["Subcontractor", "Subcontractor's bank (STB2)"],
        RefusalCode::OracleRefused,
        || async move { s.contract_payment(&u, PARAMETER, "C-1", &b, 1_000_000, true).await },
    )
    .await;
    let (s, u, k) = (stb2.clone(), sub.clone(), gc.clone());
    c.refused(
        "9. Marked funds cannot move by a plain transfer",
        &["Subcontractor", "General contractor"],
        RefusalCode::InsufficientFunds,
        || async move { s.transfer(&u, &[(&k, 1_000)]).await },
    )
    .await;
    Ok(())
}

async fn farm_animals(c: &mut Ctx) -> Result<(), DemoError> {
    let sec = c.open_da("SEC (lender)", ids::TREASURY, HolderKind::GovernmentAgency, 10_000_000).await?;
    let seller = c.open_da("Farmer 2 (seller)", "STB2", HolderKind::Individual, 0).await?;
    c.open_da("Farmer 1 (borrower)", "STB1", HolderKind::Individual, 0).await?;
    const EV: &str = "IFA-2026-000451";
    let ifa = c.api("IFA")?;
    let spec = Event {
        id: EV,
        kind: EventKindDto::Single,
        target: None,
        sender: Some(&sec),
        recipient: &seller,
        amount: Some(3_500_000),
        valid_until: c.now().plus_days(90),
    };
    let r = ifa.register_event(&spec).await;
    c.check(
        "1-4. Loan agreed; the purchase event is registered on the oracle (SEC → Farmer 2, 3 500 000)",
        &[],
        r.is_ok(),
        format!("{r:?}"),
    )
    .await;
    let treasury = c.api(ids::TREASURY)?;
    let (t, s) = (treasury.clone(), sec.clone());
    c.step(
        "5. SEC holds 3 500 000 DT on its DA at the Treasury node (oracle-confirmed)",
        &["SEC (lender)"],
        || async move { t.hold(&s, EV, None).await },
    )
    .await;
    let notices = c.api("STB2")?.notifications(&seller).await;
    let told = notices.as_ref().is_ok_and(|n| {
        n.iter()
            .any(|n| n.kind == NotificationKind::HeldForYou && n.params.get("event").map(String::as_str) == Some(EV))
    });
    c.check("6. Farmer 2 is told the funds are held for them", &["Farmer 2 (seller)"], told, format!("{notices:?}"))
        .await;
    let (t, s, f) = (treasury.clone(), sec.clone(), seller.clone());
    c.refused(
        "SEC cannot spend the held funds meanwhile",
        &["SEC (lender)"],
        RefusalCode::InsufficientFunds,
        || async move { t.transfer(&s, &[(&f, 7_000_000)]).await },
    )
    .await;
    let r = ifa.report_occurrence(EV, None).await;
    c.check("7-8. Farmer 2 transfers the animals; the IFA reports it to the oracle", &[], r.is_ok(), format!("{r:?}"))
        .await;
    let before = c.balance("Farmer 2 (seller)", "standard").await;
    c.tick().await;
    let after = c.balance("Farmer 2 (seller)", "standard").await;
    c.check(
        "8. The hold is released: Farmer 2 receives 3 500 000 DT",
        &["SEC (lender)", "Farmer 2 (seller)"],
        after == before + dt(3_500_000).tiyn(),
        format!("{before} → {after}"),
    )
    .await;
    let again = ifa.report_occurrence(EV, None).await;
    c.check(
        "A second report of the same single event is refused by the oracle",
        &[],
        again.as_ref().is_err_and(|e| Refused::Code(RefusalCode::OracleRefused).matches(e)),
        format!("{again:?}"),
    )
    .await;
    Ok(())
}

async fn investment_subsidies(c: &mut Ctx) -> Result<(), DemoError> {
    let dag =
        c.open_da("DAg (Ministry of Agriculture)", ids::TREASURY, HolderKind::GovernmentAgency, 40_000_000).await?;
    let lessor = c.open_da("Leasing company", "STB1", HolderKind::LegalEntity, 0).await?;
    let (ssis, treasury) = (c.api("SSIS")?, c.api(ids::TREASURY)?);
    let spec = |n: &'static str, tenge: u64, now: Timestamp| Event {
        id: n,
        kind: EventKindDto::Single,
        target: None,
        sender: Some(&dag),
        recipient: &lessor,
        amount: Some(tenge),
        valid_until: now.plus_days(180),
    };
    let r = ssis.register_event(&spec("SSIS-2026-INV-1", 25_000_000, c.now())).await;
    c.check(
        "1-4. The SSIS approves the application; the event is registered (valid 180 days)",
        &[],
        r.is_ok(),
        format!("{r:?}"),
    )
    .await;
    let (t, d) = (treasury.clone(), dag.clone());
    c.step("5. DAg holds 25 000 000 DT", &["DAg (Ministry of Agriculture)"], || async move {
        t.hold(&d, "SSIS-2026-INV-1", None).await
    })
    .await;
    let r = ssis.report_occurrence("SSIS-2026-INV-1", None).await;
    c.tick().await;
    let got = c.balance("Leasing company", "standard").await;
    c.check(
        "7-8. The lessor proves delivery; the SSIS trigger releases 25 000 000 to it",
        &["DAg (Ministry of Agriculture)", "Leasing company"],
        r.is_ok() && got == dt(25_000_000).tiyn(),
        format!("{r:?}, {got}"),
    )
    .await;
    // Second case: no trigger within 180 days.
    let r = ssis.register_event(&spec("SSIS-2026-INV-2", 10_000_000, c.now())).await;
    let (t, d) = (treasury.clone(), dag.clone());
    c.step(
        "A second subsidy: event registered and 10 000 000 DT held",
        &["DAg (Ministry of Agriculture)"],
        || async move {
            r?;
            t.hold(&d, "SSIS-2026-INV-2", None).await
        },
    )
    .await;
    c.clock.advance(179 * Timestamp::DAY_MS);
    c.tick().await;
    let held = c.balance("DAg (Ministry of Agriculture)", "held").await;
    c.check(
        "After 179 days without a trigger the funds are still held",
        &["DAg (Ministry of Agriculture)"],
        held == dt(10_000_000).tiyn(),
        format!("{held}"),
    )
    .await;
    c.clock.advance(2 * Timestamp::DAY_MS);
    let late = ssis.report_occurrence("SSIS-2026-INV-2", None).await;
    c.check(
        "A trigger after valid-until is refused by the oracle",
        &[],
        late.as_ref().is_err_and(|e| Refused::Code(RefusalCode::OracleRefused).matches(e)),
        format!("{late:?}"),
    )
    .await;
    c.tick().await;
    let (held, standard) = (
        c.balance("DAg (Ministry of Agriculture)", "held").await,
        c.balance("DAg (Ministry of Agriculture)", "standard").await,
    );
    c.check(
        "9. After 180 days the 10 000 000 DT return to DAg's DA on the Treasury node",
        &["DAg (Ministry of Agriculture)", "Leasing company"],
        held == 0 && standard == dt(15_000_000).tiyn(),
        format!("held {held}, standard {standard}"),
    )
    .await;
    Ok(())
}

async fn digital_vat(c: &mut Ctx) -> Result<(), DemoError> {
    let le1 = c.open_da("LE 1", "STB1", HolderKind::LegalEntity, 2_000).await?;
    let le2 = c.open_da("LE 2", "STB2", HolderKind::LegalEntity, 0).await?;
    let le3 = c.open_da("LE 3", "STB3", HolderKind::LegalEntity, 0).await?;
    let shop = c.open_da("A shop", "STB3", HolderKind::LegalEntity, 0).await?;
    c.adopt_institution("Tax authority (SRC)", ids::TAX_DA).await?;
    let src = c.api("SRC")?;
    let r1 = src.register_invoice("EI-2026-0001", &le2, &le1, 1_000, 120).await;
    let r2 = src.register_invoice("EI-2026-0002", &le3, &le2, 500, 60).await;
    c.check("Prerequisite: the SRC registered e-invoices EI-1 (LE2 → LE1, 1 000 + 120 VAT) and EI-2 (LE3 → LE2, 500 + 60 VAT)", &[], r1.is_ok() && r2.is_ok(), format!("{r1:?} {r2:?}")).await;
    let (stb1, stb2, stb3) = (c.api("STB1")?, c.api("STB2")?, c.api("STB3")?);
    let (s, a) = (stb1.clone(), le1.clone());
    c.step(
        "1-3. LE 1 pays EI-1 of 1 120: LE 2 receives 1 000 standard and 120 VAT tokens",
        &["LE 1", "LE 2"],
        || async move { s.pay_invoice(&a, "EI-2026-0001").await },
    )
    .await;
    let (s, a) = (stb2.clone(), le2.clone());
    c.step(
        "4-5. LE 2 pays EI-2 of 560 with 500 standard and 60 of its own VAT tokens",
        &["LE 2", "LE 3"],
        || async move { s.pay_invoice(&a, "EI-2026-0002").await },
    )
    .await;
    let (s, a, b) = (stb2.clone(), le2.clone(), shop.clone());
    c.refused(
        "LE 2 tries to spend VAT tokens at a shop: VAT tokens go only to an e-invoice's VAT part or the tax authority",
        &["LE 2", "A shop"],
        RefusalCode::InsufficientFunds,
        || async move { s.transfer(&a, &[(&b, 560)]).await },
    )
    .await;
    let (s, a) = (stb1.clone(), le1.clone());
    c.refused(
        "LE 1 tries to pay EI-1 again: an e-invoice is paid once",
        &["LE 1"],
        OracleCode::InvoicePaid,
        || async move { s.pay_invoice(&a, "EI-2026-0001").await },
    )
    .await;
    let (s, a) = (stb2.clone(), le2.clone());
    c.step("6. LE 2 pays its 60 VAT to the SRC", &["LE 2", "Tax authority (SRC)"], || async move {
        s.pay_vat(&a, 60).await
    })
    .await;
    let (s, a) = (stb3.clone(), le3.clone());
    c.step("6. LE 3 pays its 60 VAT to the SRC", &["LE 3", "Tax authority (SRC)"], || async move {
        s.pay_vat(&a, 60).await
    })
    .await;
    let (std_src, vat_src) =
        (c.balance("Tax authority (SRC)", "standard").await, c.balance("Tax authority (SRC)", "vat").await);
    c.check(
        "7. The tax authority ends with 120 standard DT (no VAT tokens)",
        &["Tax authority (SRC)"],
        std_src == dt(120).tiyn() && vat_src == 0,
        format!("standard {std_src}, vat {vat_src}"),
    )
    .await;
    Ok(())
}

async fn cryptocard(c: &mut Ctx) -> Result<(), DemoError> {
    let exchange = c.open_da("Crypto exchange", "STB1", HolderKind::LegalEntity, 2_000_000).await?;
    let issuer = c.adopt_institution("STB-Issuer (STB1)", "STB1-DA").await?;
    let stb1 = c.api("STB1")?;
    const MANDATE: &str = "CARD-2026-0007";
    let (s, ex, grantee, until) = (stb1.clone(), exchange.clone(), issuer.clone(), c.now().plus_days(30));
    c.step(
        "Setup: the exchange authorises its bank (STB-Issuer) to debit up to 1 000 000 DT from its DA",
        &["Crypto exchange"],
        || async move { s.grant_mandate(&ex, MANDATE, &grantee, 1_000_000, until).await },
    )
    .await;
    let (s, is, ex) = (stb1.clone(), issuer.clone(), exchange.clone());
    c.step(
        "1-6. A card purchase of 25 000: the exchange confirms; the issuer debits the exchange's DA through the API",
        &["Crypto exchange", "STB-Issuer (STB1)"],
        || async move { s.debit(&is, &ex, MANDATE, &is, 25_000).await },
    )
    .await;
    let (s, is, ex) = (stb1.clone(), issuer.clone(), exchange.clone());
    c.refused(
        "A debit beyond the authorised reserve is refused",
        &["Crypto exchange", "STB-Issuer (STB1)"],
        RefusalCode::InsufficientFunds,
        || async move { s.debit(&is, &ex, MANDATE, &is, 2_000_000).await },
    )
    .await;
    let (s, ex) = (stb1.clone(), exchange.clone());
    c.step(
        "The exchange revokes the mandate: the unused 975 000 DT become free again",
        &["Crypto exchange"],
        || async move { s.revoke_mandate(&ex, MANDATE).await },
    )
    .await;
    let standard = c.balance("Crypto exchange", "standard").await;
    c.check(
        "7-8. The exchange paid exactly the card amount",
        &["Crypto exchange"],
        standard == dt(1_975_000).tiyn(),
        format!("{standard}"),
    )
    .await;
    Ok(())
}

async fn vouchers(c: &mut Ctx) -> Result<(), DemoError> {
    let school = c.open_da("School No. 12", ids::TREASURY, HolderKind::GovernmentAgency, 500_000).await?;
    let canteen = c.open_da("Canteen operator", "STB2", HolderKind::LegalEntity, 0).await?;
    const EV: &str = "MEALS-SCHOOL12-2026-01";
    let terminals = c.api("TERMINALS")?;
    let spec = Event {
        id: EV,
        kind: EventKindDto::Recurring,
        target: None,
        sender: Some(&school),
        recipient: &canteen,
        amount: Some(300_000),
        valid_until: c.now().plus_days(31),
    };
    let r = terminals.register_event(&spec).await;
    let (t, s) = (c.api(ids::TREASURY)?, school.clone());
    c.step(
        "The school's meal budget (300 000 DT) is held for the canteen (recurring)",
        &["School No. 12", "Canteen operator"],
        || async move {
            r?;
            t.hold(&s, EV, None).await
        },
    )
    .await;
    for meal in 1..=3 {
        let r = terminals.report_occurrence(EV, Some(1_500)).await;
        c.tick().await;
        let got = c.balance("Canteen operator", "standard").await;
        c.check(
            &format!("Meal {meal}: a card swipe is reported; 1 500 DT go to the canteen"),
            &["School No. 12", "Canteen operator"],
            r.is_ok() && got == dt(1_500 * meal).tiyn(),
            format!("{r:?} {got}"),
        )
        .await;
    }
    let held = c.balance("School No. 12", "held").await;
    c.check(
        "The rest stays held for further meals",
        &["School No. 12"],
        held == dt(300_000 - 4_500).tiyn(),
        format!("{held}"),
    )
    .await;
    let (t, s, k) = (c.api(ids::TREASURY)?, school.clone(), canteen.clone());
    c.refused(
        "The school cannot hand the held budget to the canteen without meals",
        &["School No. 12", "Canteen operator"],
        RefusalCode::InsufficientFunds,
        || async move { t.transfer(&s, &[(&k, 250_000)]).await },
    )
    .await;
    Ok(())
}

async fn crowdfunding(c: &mut Ctx) -> Result<(), DemoError> {
    let beneficiary = c.open_da("Charity fund", "STB3", HolderKind::LegalEntity, 0).await?;
    let backers = [("Backer 1", "STB1", 400_000u64), ("Backer 2", "STB2", 400_000), ("Backer 3", "STB1", 300_000)];
    for (label, node, _) in backers {
        c.open_da(label, node, HolderKind::Individual, 1_000_000).await?;
    }
    let deadline = c.now().plus_days(30);
    let campaign = |n: &'static str, target: u64| Event {
        id: n,
        kind: EventKindDto::Campaign,
        target: Some(target),
        sender: None,
        recipient: &beneficiary,
        amount: None,
        valid_until: deadline,
    };
    let crowd = c.api("CROWD")?;
    let a = crowd.register_event(&campaign("CAMPAIGN-A", 1_000_000)).await;
    let b = crowd.register_event(&campaign("CAMPAIGN-B", 2_000_000)).await;
    c.check(
        "Two campaigns for the charity: A (target 1 000 000), B (target 2 000 000), deadline in 30 days",
        &[],
        a.is_ok() && b.is_ok(),
        format!("{a:?} {b:?}"),
    )
    .await;
    for (label, node, amount) in backers {
        let (n, acct) = (c.api(node)?, c.account(label)?);
        c.step(&format!("{label} contributes {amount} to campaign A (held)"), &[label], || async move {
            n.hold(&acct, "CAMPAIGN-A", Some(amount)).await
        })
        .await;
    }
    for (label, node, amount) in [("Backer 1", "STB1", 500_000u64), ("Backer 2", "STB2", 300_000)] {
        let (n, acct) = (c.api(node)?, c.account(label)?);
        c.step(&format!("{label} contributes {amount} to campaign B (held)"), &[label], || async move {
            n.hold(&acct, "CAMPAIGN-B", Some(amount)).await
        })
        .await;
    }
    let (n, acct) = (c.api("STB1")?, c.account("Backer 1")?);
    c.refused(
        "Before the deadline nothing can be released to the charity",
        &["Backer 1", "Charity fund"],
        OracleCode::EventNotOccurred,
        || async move { n.release(&acct, "CAMPAIGN-A").await },
    )
    .await;
    c.clock.advance(31 * Timestamp::DAY_MS);
    let (n, acct) = (c.api("STB1")?, c.account("Backer 3")?);
    c.refused(
        "A contribution after the deadline is refused by the oracle",
        &["Backer 3"],
        RefusalCode::OracleRefused,
        || async move { n.hold(&acct, "CAMPAIGN-B", Some(100_000)).await },
    )
    .await;
    c.tick().await;
    c.tick().await;
    let got = c.balance("Charity fund", "standard").await;
    c.check(
        "At the deadline campaign A met its target: the charity receives all 1 100 000",
        &["Charity fund"],
        got == dt(1_100_000).tiyn(),
        format!("{got}"),
    )
    .await;
    let b1 = c.balance("Backer 1", "standard").await;
    let b2 = c.balance("Backer 2", "standard").await;
    c.check(
        "Campaign B missed its target: every contribution returned to its contributor",
        &["Backer 1", "Backer 2"],
        b1 == dt(600_000).tiyn() && b2 == dt(600_000).tiyn(),
        format!("{b1} {b2}"),
    )
    .await;
    Ok(())
}

async fn escrow(c: &mut Ctx) -> Result<(), DemoError> {
    let buyer = c.open_da("Buyer", "STB1", HolderKind::Individual, 35_000_000).await?;
    let seller = c.open_da("Seller", "STB2", HolderKind::Individual, 0).await?;
    const EV: &str = "EGOV-TITLE-2026-5521";
    let egov = c.api("EGOV")?;
    let spec = Event {
        id: EV,
        kind: EventKindDto::Single,
        target: None,
        sender: Some(&buyer),
        recipient: &seller,
        amount: Some(30_000_000),
        valid_until: c.now().plus_days(60),
    };
    let r = egov.register_event(&spec).await;
    let (s, b) = (c.api("STB1")?, buyer.clone());
    c.step(
        "The buyer holds 30 000 000 DT until the register confirms the title transfer",
        &["Buyer", "Seller"],
        || async move {
            r?;
            s.hold(&b, EV, None).await
        },
    )
    .await;
    let (s, b) = (c.api("STB1")?, buyer.clone());
    c.refused(
        "Nothing can be released before the register confirms",
        &["Buyer", "Seller"],
        OracleCode::EventNotOccurred,
        || async move { s.release(&b, EV).await },
    )
    .await;
    let r = egov.report_occurrence(EV, None).await;
    c.tick().await;
    let got = c.balance("Seller", "standard").await;
    c.check(
        "The register confirms the new owner: the seller receives 30 000 000",
        &["Buyer", "Seller"],
        r.is_ok() && got == dt(30_000_000).tiyn(),
        format!("{r:?} {got}"),
    )
    .await;
    Ok(())
}

async fn taxi_split(c: &mut Ctx) -> Result<(), DemoError> {
    let rider = c.open_da("Rider", "STB1", HolderKind::Individual, 5_000).await?;
    let driver = c.open_da("Driver", "STB2", HolderKind::Individual, 0).await?;
    let operator = c.open_da("Taxi operator", "STB3", HolderKind::LegalEntity, 0).await?;
    let tax = c.adopt_institution("Tax authority (SRC)", ids::TAX_DA).await?;
    let stb1 = c.api("STB1")?;
    let (s, r, d, o, t) = (stb1.clone(), rider.clone(), driver.clone(), operator.clone(), tax.clone());
    let done = c
        .step("One payment of 2 000: 1 600 to the driver, 300 commission to the operator, 100 tax — three banks, one transaction", &["Rider", "Driver", "Taxi operator", "Tax authority (SRC)"], || async move {
            s.transfer(&r, &[(&d, 1_600), (&o, 300), (&t, 100)]).await
        })
        .await;
    let seen = match &done {
        Some(d) => Some(stb1.client().transaction(&d.tx).await),
        None => None,
    };
    let outputs = seen
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .and_then(|t| t.transaction["body"]["outputs"].as_array().map(Vec::len))
        .unwrap_or(0);
    c.check(
        "All three recipients were paid by the same atomic transaction",
        &[],
        outputs >= 3,
        format!("{outputs} outputs: {seen:?}"),
    )
    .await;
    let (s, r, d, o) = (stb1.clone(), rider.clone(), driver.clone(), operator.clone());
    c.refused(
        "A split larger than the balance pays nobody",
        &["Rider", "Driver", "Taxi operator"],
        RefusalCode::InsufficientFunds,
        || async move { s.transfer(&r, &[(&d, 3_000), (&o, 100)]).await },
    )
    .await;
    Ok(())
}

async fn health_insurance(c: &mut Ctx) -> Result<(), DemoError> {
    // The compulsory health insurance fund is a state body: its DA is on the Treasury node.
    let insurer =
        c.open_da("Social health insurance fund", ids::TREASURY, HolderKind::GovernmentAgency, 2_000_000).await?;
    let insured = c.open_da("Insured person", "STB1", HolderKind::Individual, 0).await?;
    let clinic_a = c.open_da("Licensed clinic A", "STB2", HolderKind::LegalEntity, 0).await?;
    let clinic_b = c.open_da("Licensed clinic B", "STB3", HolderKind::LegalEntity, 0).await?;
    let pharmacy = c.open_da("Unlicensed provider", "STB2", HolderKind::LegalEntity, 0).await?;
    let (t, f, p, a, b) = (c.api(ids::TREASURY)?, insurer.clone(), insured.clone(), clinic_a.clone(), clinic_b.clone());
    c.step(
        "The fund puts 500 000 DT of treatment money on the insured person's DA, spendable only at licensed clinics",
        &["Social health insurance fund", "Insured person"],
        || async move { t.mark_address(&f, &p, 500_000, "OSMS-2026-POLICY-88", &[(&[&a, &b][..], 500_000)]).await },
    )
    .await;
    let (s, i, k) = (c.api("STB1")?, insured.clone(), clinic_a.clone());
    c.step(
        "The insured pays licensed clinic A 120 000: the clinic receives standard DT",
        &["Insured person", "Licensed clinic A"],
        || async move { s.pay_marked(&i, &[(&k, 120_000)]).await },
    )
    .await;
    let (s, i, p) = (c.api("STB1")?, insured.clone(), pharmacy.clone());
    c.refused(
        "Paying an unlicensed provider is refused",
        &["Insured person", "Unlicensed provider"],
        RefusalCode::Rule(802),
        || async move { s.pay_marked(&i, &[(&p, 50_000)]).await },
    )
    .await;
    Ok(())
}

async fn cross_border(c: &mut Ctx) -> Result<(), DemoError> {
    let kz = c.adopt_institution("Kazakh bank (STB1)", "STB1-DA").await?;
    let foreign = c.adopt_institution("Foreign bank", ids::FOREIGN_BANK_DA).await?;
    let fcb_da = c.adopt_institution("Foreign central bank", ids::FCB_DA).await?;
    c.fund(&kz, 200_000).await?;
    // No API route issues a currency other than through NBK's conversions:
    // the foreign central bank issues FCY on its own node.
    let (f, from, to) =
        (c.node(ids::FCB)?, AccountId(fcb_da.id.clone()), PayTo { address: addr(&foreign)?, amount: dt(1_000) });
    c.step("The foreign central bank issues 1 000 FCY to the foreign bank", &["Foreign bank"], || async move {
        Ok(f.issue(&from, to, id(CbsRef::new("FCB-CBS-1"))?).await?)
    })
    .await;
    let r = c.api("FXDESK")?.set_rate("DT", ids::FOREIGN_CURRENCY, 1, 125, c.now().plus_days(1)).await;
    c.check("The FX oracle publishes 1 FCY = 125 DT", &[], r.is_ok(), format!("{r:?}")).await;
    let stb1 = c.api("STB1")?;
    let (s, k, f) = (stb1.clone(), kz.clone(), foreign.clone());
    c.step(
        "PvP: 12 500 DT against 100 FCY, both legs in one transaction",
        &["Kazakh bank (STB1)", "Foreign bank"],
        || async move { s.pvp(&k, &f, "DT", 12_500, ids::FOREIGN_CURRENCY).await },
    )
    .await;
    let (s, k, f) = (stb1.clone(), kz.clone(), foreign.clone());
    c.refused(
        "A PvP whose foreign leg cannot be paid (1 200 FCY needed, 900 held) moves nothing on either side",
        &["Kazakh bank (STB1)", "Foreign bank"],
        RefusalCode::InsufficientFunds,
        || async move { s.pvp(&k, &f, "DT", 150_000, ids::FOREIGN_CURRENCY).await },
    )
    .await;
    Ok(())
}

fn card<T>(r: Result<T, dtenge_node::NodeError>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(e.to_string()))
}

/// Issue 22: the card network simulator writes the messages of a card
/// payment; STB1's card processing relays each to the API as the issuing
/// bank. Dana's card pays from her DA; the merchant's acquirer (STB2)
/// settles to its own DA.
async fn card_payment(c: &mut Ctx) -> Result<(), DemoError> {
    use dtenge_node::cards::network_simulator::CardNetworkSimulator;
    use dtenge_node::cards::{AcquirerId, CardExpiry, CardToken};

    let dana = c.open_da("Dana (cardholder)", "STB1", HolderKind::Individual, 500).await?;
    let issuer = c.adopt_institution("STB1 (issuing bank)", "STB1-DA").await?;
    c.fund(&issuer, 1_000).await?;
    let acquirer_da = c.adopt_institution("STB2 (acquirer, settlement DA)", "STB2-DA").await?;
    let stb1 = c.api("STB1")?;
    let acquirer = card(AcquirerId::new("400002"))?;
    let mut network = CardNetworkSimulator::new(c.now().millis() % 1_000_000);
    card(network.add_acquirer(acquirer.clone(), addr(&acquirer_da)?))?;
    let token = card(CardToken::new("tok_dana_5f2c91a7"))?;
    let expiry = card(CardExpiry::parse("2812"))?;
    let labels = ["Dana (cardholder)", "STB1 (issuing bank)", "STB2 (acquirer, settlement DA)"];

    let (s, da) = (stb1.clone(), dana.clone());
    c.step("Setup: STB1 links Dana's card to her DA (token and last four digits only)", &labels, || async move {
        s.link_card(&da, "tok_dana_5f2c91a7", "4417", "2812").await
    })
    .await;
    let now = c.now();
    let auth = card(network.authorisation(&token, expiry, &acquirer, dt(120), now))?;
    let (s, m) = (stb1.clone(), auth.clone());
    let approved = c
        .step("1. Authorisation 0100 for 120 DT: approved (00), 120 DT held on Dana's DA", &labels, || async move {
            s.card_message(&m).await
        })
        .await;
    let (s, m, first) = (stb1.clone(), auth.clone(), approved.clone());
    c.step("2. The network retransmits the 0100: the same answer, nothing more held", &labels, || async move {
        let again = s.card_message(&m).await?;
        if Some(&again) == first.as_ref() {
            Ok(again)
        } else {
            Err(DemoError::Step(format!("a retransmission was answered differently: {again:?}")))
        }
    })
    .await;
    let clearing = card(network.presentment(&auth, dt(90), now))?;
    let (s, m) = (stb1.clone(), clearing.clone());
    c.step(
        "3. Clearing 1240 for 90 of the 120: 90 DT to the acquirer's settlement DA, the other 30 released to Dana",
        &labels,
        || async move { s.card_message(&m).await },
    )
    .await;
    let (s, m) = (stb1.clone(), clearing.clone());
    c.step("4. The clearing is retransmitted: nothing moves a second time", &labels, || async move {
        s.card_message(&m).await
    })
    .await;
    let refund = card(network.refund(&auth, dt(40), now))?;
    let (s, m) = (stb1.clone(), refund);
    c.step("5. Refund 1240 (processing code 20) of 40 DT: paid back to Dana", &labels, || async move {
        s.card_message(&m).await
    })
    .await;
    let too_much = card(network.refund(&auth, dt(60), now))?;
    let (s, m) = (stb1.clone(), too_much);
    c.refused(
        "A refund of 60 more is refused: only 50 of the 90 captured is left (13)",
        &labels,
        Refused::Card(ResponseCode::InvalidAmount),
        || async move { s.card_message(&m).await },
    )
    .await;
    let big = card(network.authorisation(&token, expiry, &acquirer, dt(5_000), now))?;
    let (s, m) = (stb1.clone(), big);
    c.refused(
        "An authorisation for more than Dana has is declined: insufficient funds (51)",
        &labels,
        Refused::Card(ResponseCode::InsufficientFunds),
        || async move { s.card_message(&m).await },
    )
    .await;
    let hold = card(network.authorisation(&token, expiry, &acquirer, dt(400), now))?;
    let (s, m) = (stb1.clone(), hold.clone());
    c.step("A second authorisation holds 400 DT", &labels, || async move { s.card_message(&m).await }).await;
    let held = card(network.authorisation(&token, expiry, &acquirer, dt(100), now))?;
    let (s, m) = (stb1.clone(), held);
    c.refused(
        "An authorisation for 100 more: the money is there but held, so not permitted to the cardholder (57)",
        &labels,
        Refused::Card(ResponseCode::NotPermitted),
        || async move { s.card_message(&m).await },
    )
    .await;
    let reversal = card(network.reversal(&hold, false, now))?;
    let (s, m) = (stb1.clone(), reversal);
    c.step("Reversal 0400 of the 400 DT authorisation: all of it released", &labels, || async move {
        s.card_message(&m).await
    })
    .await;
    let wrong_expiry = card(network.authorisation(&token, card(CardExpiry::parse("2411"))?, &acquirer, dt(10), now))?;
    let (s, m) = (stb1.clone(), wrong_expiry);
    c.refused(
        "A card presented with a past expiry date is declined: expired card (54)",
        &labels,
        Refused::Card(ResponseCode::ExpiredCard),
        || async move { s.card_message(&m).await },
    )
    .await;
    let lapsing = card(network.authorisation(&token, expiry, &acquirer, dt(70), now))?;
    let (s, m) = (stb1.clone(), lapsing.clone());
    c.step("An authorisation of 70 DT that is never cleared", &labels, || async move { s.card_message(&m).await })
        .await;
    c.clock.advance(8 * Timestamp::DAY_MS);
    c.tick().await;
    let mandated = c.balance("Dana (cardholder)", "mandated").await;
    c.check(
        "After the scheme's 7 days the hold returns by itself",
        &labels,
        mandated == 0,
        format!("{mandated} tiyn still held"),
    )
    .await;
    let late = card(network.presentment(&lapsing, dt(70), c.now()))?;
    let (s, m) = (stb1.clone(), late);
    c.refused(
        "A clearing after the authorisation expired is refused (12)",
        &labels,
        Refused::Card(ResponseCode::InvalidTransaction),
        || async move { s.card_message(&m).await },
    )
    .await;
    let standard = c.balance("Dana (cardholder)", "standard").await;
    let acquired = c.balance("STB2 (acquirer, settlement DA)", "standard").await;
    c.check(
        "Dana paid exactly 90 captured less 40 refunded; the acquirer received the 90",
        &labels,
        standard == dt(450).tiyn() && acquired >= dt(90).tiyn(),
        format!("Dana {standard} tiyn, acquirer {acquired} tiyn"),
    )
    .await;
    Ok(())
}

async fn stablecoin(c: &mut Ctx) -> Result<(), DemoError> {
    const COIN: &str = ids::STABLECOIN;
    let issuer = c.adopt_institution("Stablecoin issuer", ids::COIN_ISSUER_DA).await?;
    let alice = c.open_da("Alice", "STB1", HolderKind::Individual, 50_000).await?;
    let bob = c.open_da("Bob", "STB2", HolderKind::Individual, 0).await?;
    let coin_key = format!("standard_{COIN}");
    let (s, a, i) = (c.api("STB1")?, alice.clone(), issuer.clone());
    c.step(
        "Alice buys 20 000 of the stablecoin: she pays the licensed issuer 20 000 DT",
        &["Alice", "Stablecoin issuer"],
        || async move { s.transfer(&a, &[(&i, 20_000)]).await },
    )
    .await;
    let (k, i) = (c.api(ids::COIN_ISSUER)?, issuer.clone());
    c.step(
        "The issuer mints 20 000 KZTC: the same transaction moves 20 000 DT into its reserve",
        &["Stablecoin issuer"],
        || async move { k.mint(COIN, &i, 20_000).await },
    )
    .await;
    let reserve = c.balance("Stablecoin issuer", "reserve").await;
    let minted = c.balance("Stablecoin issuer", &coin_key).await;
    c.check(
        "The issuer holds 20 000 KZTC and 20 000 DT in reserve",
        &["Stablecoin issuer"],
        reserve == dt(20_000).tiyn() && minted == dt(20_000).tiyn(),
        format!("reserve {reserve}, stablecoin {minted}"),
    )
    .await;
    let (k, i) = (c.api(ids::COIN_ISSUER)?, issuer.clone());
    c.refused(
        "Minting 1 more without DT to put in the reserve is refused",
        &["Stablecoin issuer"],
        RefusalCode::InsufficientFunds,
        || async move { k.mint(COIN, &i, 1).await },
    )
    .await;
    let (s, a) = (c.api("STB1")?, alice.clone());
    c.refused(
        "A bank cannot mint the issuer's stablecoin (not a licensed issuer)",
        &["Alice"],
        Refused::NotPermitted,
        || async move { s.mint(COIN, &a, 100).await },
    )
    .await;
    let (k, i, a) = (c.api(ids::COIN_ISSUER)?, issuer.clone(), alice.clone());
    c.step("The issuer pays Alice her 20 000 KZTC", &["Stablecoin issuer", "Alice"], || async move {
        k.coin_transfer(COIN, &i, &[(&a, 20_000)]).await
    })
    .await;
    let (s, a, b) = (c.api("STB1")?, alice.clone(), bob.clone());
    c.step("Alice pays Bob 7 500 KZTC (another bank)", &["Alice", "Bob"], || async move {
        s.coin_transfer(COIN, &a, &[(&b, 7_500)]).await
    })
    .await;
    let (k, i, b) = (c.api(ids::COIN_ISSUER)?, issuer.clone(), bob.clone());
    c.refused(
        "The issuer cannot spend its reserve: a DT payment from it finds only its free DT (none)",
        &["Stablecoin issuer", "Bob"],
        RefusalCode::InsufficientFunds,
        || async move { k.transfer(&i, &[(&b, 1_000)]).await },
    )
    .await;
    let r = c.spend_reserve_directly(&issuer, ids::COIN_ISSUER_DA, COIN, &bob);
    c.refused(
        "Nor by a transaction it signs itself: the kernel every node runs refuses a transfer of reserve DT",
        &["Stablecoin issuer", "Bob"],
        RefusalCode::Rule(1506),
        || async move { r },
    )
    .await;
    let (s, b, i) = (c.api("STB2")?, bob.clone(), issuer.clone());
    c.step(
        "Bob redeems 5 000: he pays the stablecoin back to the issuer",
        &["Bob", "Stablecoin issuer"],
        || async move { s.coin_transfer(COIN, &b, &[(&i, 5_000)]).await },
    )
    .await;
    let (k, i) = (c.api(ids::COIN_ISSUER)?, issuer.clone());
    c.step(
        "The issuer burns the 5 000 KZTC: the same transaction releases 5 000 DT from the reserve",
        &["Stablecoin issuer"],
        || async move { k.burn(COIN, &i, 5_000).await },
    )
    .await;
    let (k, i, b) = (c.api(ids::COIN_ISSUER)?, issuer.clone(), bob.clone());
    c.step("The issuer pays Bob 5 000 DT", &["Stablecoin issuer", "Bob"], || async move {
        k.transfer(&i, &[(&b, 5_000)]).await
    })
    .await;
    let (k, i) = (c.api(ids::COIN_ISSUER)?, issuer.clone());
    c.refused(
        "Burning more than the issuer holds is refused",
        &["Stablecoin issuer"],
        RefusalCode::InsufficientFunds,
        || async move { k.burn(COIN, &i, 1).await },
    )
    .await;
    let proof = c.api("STB2")?.reserves(COIN).await;
    let ok = proof.as_ref().is_ok_and(|p| {
        p.verified
            && p.stablecoin.covered
            && p.stablecoin.supply_tiyn == dt(15_000).tiyn()
            && p.stablecoin.reserve_tiyn == dt(15_000).tiyn()
    });
    c.check(
        "Proof of reserves, signed by the oracle: supply 15 000 KZTC, reserve 15 000 DT",
        &["Alice", "Bob", "Stablecoin issuer"],
        ok,
        format!("{proof:?}"),
    )
    .await;
    Ok(())
}

/// Issue 21.4: a shop at STB2 shows a dynamic EMVCo QR its bank signed; a
/// customer of STB1 pays it once; paying it again, an expired QR and a QR
/// whose amount was changed (CRC recomputed) are refused and move nothing.
async fn qr_merchant(c: &mut Ctx) -> Result<(), DemoError> {
    use dtenge_client::qr::{self, QrPayment};
    let customer = c.open_da("Customer", "STB1", HolderKind::Individual, 10_000).await?;
    let shop = c.open_da("Coffee shop", "STB2", HolderKind::LegalEntity, 0).await?;
    let bank_key = dtenge_platform::spec::Keys::at(&c.platform.data)
        .load("STB2")
        .map_err(|e| DemoError::Platform(format!("key of STB2: {e}")))?;
    let now_s = c.now().millis() / 1_000;
    let order = |reference: &str, tenge: u64, ttl_s: u64| QrPayment {
        address: shop.address.clone(),
        bank: "STB2".into(),
        name: "Coffee shop".into(),
        city: "Astana".into(),
        amount_tiyn: Some(crate::runner::tiyn(tenge)),
        reference: Some(reference.into()),
        expires_at_s: Some(now_s + ttl_s),
    };
    let sign = |p: &QrPayment| qr::encode_dynamic(p, &bank_key).map_err(|e| DemoError::Step(e.to_string()));
    let paid = sign(&order("ORDER-1001", 2_500, 300))?;
    let soon = sign(&order("ORDER-1002", 900, 60))?;
    // The amount changed from 1 000 to 9 000 and the CRC recomputed: only the bank's signature catches it.
    let honest = sign(&order("ORDER-1003", 1_000, 300))?;
    let changed = honest.replacen("54071000.00", "54079000.00", 1);
    let body = changed.get(..changed.len().saturating_sub(4)).unwrap_or_default();
    let tampered = format!("{body}{:04X}", qr::crc16(body.as_bytes()));

    let stb1 = c.api("STB1")?;
    let (s, who, text) = (stb1.clone(), customer.clone(), paid.clone());
    c.step(
        "The customer pays the shop's dynamic QR: 2 500 DT, reference ORDER-1001",
        &["Customer", "Coffee shop"],
        || async move { s.pay_qr(&who, &text, None).await },
    )
    .await;
    let (s, who, text) = (stb1.clone(), customer.clone(), paid.clone());
    c.refused(
        "The same QR again is refused: already paid",
        &["Customer", "Coffee shop"],
        Refused::Api("qr_already_paid"),
        || async move { s.pay_qr(&who, &text, None).await },
    )
    .await;
    c.clock.advance(61_000);
    let (s, who) = (stb1.clone(), customer.clone());
    c.refused(
        "A QR valid for 60 s, a minute later, is refused: expired",
        &["Customer", "Coffee shop"],
        Refused::Api("qr_expired"),
        || async move { s.pay_qr(&who, &soon, None).await },
    )
    .await;
    let (s, who) = (stb1.clone(), customer.clone());
    c.refused(
        "A QR whose amount was changed (CRC recomputed) is refused: the bank's signature fails",
        &["Customer", "Coffee shop"],
        Refused::Api("qr_bad_signature"),
        || async move { s.pay_qr(&who, &tampered, None).await },
    )
    .await;
    let got = c.balance("Coffee shop", "standard").await;
    c.check(
        "The shop received 2 500 DT, once",
        &["Customer", "Coffee shop"],
        got == dt(2_500).tiyn(),
        format!("{got}"),
    )
    .await;
    Ok(())
}

/// Runs the named scenarios (all if empty), each on a fresh platform under
/// `data` (a temporary directory if `None`), calling `progress` after each.
pub async fn run(
    data: Option<&Path>,
    only: &[String],
    mut progress: impl FnMut(&ScenarioReport),
) -> Result<Vec<ScenarioReport>, DemoError> {
    let all = all();
    for name in only {
        if !all.iter().any(|s| s.name == name) {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(DemoError::Step(format!("no scenario {name}; scenarios: {}", names.join(", "))));
        }
    }
    let temp = match data {
        Some(_) => None,
        None => {
            Some(std::env::temp_dir().join(format!("dtenge-demo-{}-{}", std::process::id(), Timestamp(0).millis())))
        }
    };
    let root =
        data.map(Path::to_path_buf).or(temp.clone()).ok_or_else(|| DemoError::Platform("no data directory".into()))?;
    let mut reports = Vec::new();
    for scenario in all.into_iter().filter(|s| only.is_empty() || only.iter().any(|n| n == s.name)) {
        let dir = root.join(scenario.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| DemoError::Platform(format!("{}: {e}", dir.display())))?;
        }
        let mut ctx = Ctx::open(&dir).await?;
        if let Err(e) = (scenario.run)(&mut ctx).await {
            ctx.steps.push(StepReport {
                title: "scenario setup".into(),
                expect: "ok".into(),
                outcome: format!("failed: {e}"),
                passed: false,
                balances: Vec::new(),
            });
        }
        let report = ctx.finish(scenario.name, scenario.title);
        progress(&report);
        reports.push(report);
    }
    if let Some(t) = temp {
        let _ = std::fs::remove_dir_all(t);
    }
    Ok(reports)
}
