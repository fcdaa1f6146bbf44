//! The scenarios: the seed's 2024 scenarios (Tab. 5), the applications it
//! studies (vouchers, crowdfunding, escrow, taxi split, health insurance) and
//! the 2025 plan's cross-border PvP. Each follows the seed's step list and
//! tries what must fail.

use std::future::Future;
use std::pin::Pin;

use dtenge_node::accounts::HolderKind;
use dtenge_oracle::model::{Contract, EventKind, EventSpec, FxRate, Invoice};
use dtenge_oracle::service::OracleRequest;
use dtenge_platform::spec::ids;
use dtenge_types::{
    Amount, CbsRef, ContractNo, Currency, EventId, InvoiceId, MandateId, MarkingLevel, MarkingRef, MarkingRule,
    ParameterId, ParticipantId, Timestamp,
};

use crate::runner::{Ctx, DemoError, pay_to};

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
    ]
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap_or(Amount::MAX)
}

fn id<T>(r: Result<T, dtenge_types::TypesError>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(e.to_string()))
}

fn pid(s: &str) -> Result<ParticipantId, DemoError> {
    id(ParticipantId::new(s))
}

async fn national_fund(c: &mut Ctx) -> Result<(), DemoError> {
    let ga = c.open_da("GA (National Fund programme)", ids::TREASURY, HolderKind::GovernmentAgency, 10_000_000).await?;
    let gc = c.open_da("General contractor", "STB1", HolderKind::LegalEntity, 0).await?;
    let sub = c.open_da("Subcontractor A", "STB2", HolderKind::LegalEntity, 0).await?;
    let sub_b = c.open_da("Subcontractor B", "STB3", HolderKind::LegalEntity, 0).await?;
    let supplier = c.open_da("Supplier (end)", "STB3", HolderKind::LegalEntity, 0).await?;
    let outsider = c.open_da("Unintended recipient", "STB2", HolderKind::LegalEntity, 0).await?;
    let (treasury, stb1, stb2) = (c.node(ids::TREASURY)?, c.node("STB1")?, c.node("STB2")?);
    let rule = MarkingRule {
        reference: id(MarkingRef::new("NF-2026-INFRA-01"))?,
        initiator: ga.address,
        initiator_node: pid(ids::TREASURY)?,
        levels: id(vec![
            MarkingLevel { recipients: id(vec![sub.address, sub_b.address].try_into())?, limit: dt(6_000_000) },
            MarkingLevel { recipients: id(vec![supplier.address].try_into())?, limit: dt(3_000_000) },
        ]
        .try_into())?,
    };
    let t = treasury.clone();
    let marked = c
        .step("1. GA marks 10 000 000 DT to the general contractor: depth 2, level 1 {A, B} ≤ 6 000 000, level 2 {supplier} ≤ 3 000 000", &["GA (National Fund programme)", "General contractor"], || async move {
            Ok(t.mark_address(&ga.id, pay_to(gc.address, 10_000_000), rule, None).await?)
        })
        .await;
    let s1 = stb1.clone();
    let (gc_id, sub_addr) = (gc.id.clone(), sub.address);
    let paid = c
        .step(
            "2. The contractor pays Subcontractor A (level 1) 4 000 000",
            &["General contractor", "Subcontractor A"],
            || async move { Ok(s1.pay_marked(&gc_id, &[pay_to(sub_addr, 4_000_000)], None, None).await?) },
        )
        .await;
    if let Some(p) = &paid {
        let copied = treasury.read(|s| s.received.contains_key(&p.tx));
        c.check(
            "3. The Treasury (initiator's node) holds a traceability copy",
            &[],
            copied,
            "no copy at TREASURY".into(),
        );
    }
    let s1 = stb1.clone();
    let (gc_id, outsider_addr) = (gc.id.clone(), outsider.address);
    c.refused(
        "4. The contractor tries to pay an unintended recipient: refused, funds stay",
        &["General contractor", "Unintended recipient"],
        "not allowed at marking level 1",
        || async move { Ok(s1.pay_marked(&gc_id, &[pay_to(outsider_addr, 1_000_000)], None, None).await?) },
    )
    .await;
    let s1 = stb1.clone();
    let (gc_id, subb_addr) = (gc.id.clone(), sub_b.address);
    c.refused(
        "5. The contractor tries to pay Subcontractor B 2 500 000: over the level-1 limit (2 000 000 left)",
        &["General contractor", "Subcontractor B"],
        "marking level 1 allows",
        || async move { Ok(s1.pay_marked(&gc_id, &[pay_to(subb_addr, 2_500_000)], None, None).await?) },
    )
    .await;
    let s2 = stb2.clone();
    let (sub_id, sup_addr) = (sub.id.clone(), supplier.address);
    c.step(
        "6. Subcontractor A pays the supplier (level 2, last) 2 500 000: the marking is removed",
        &["Subcontractor A", "Supplier (end)"],
        || async move { Ok(s2.pay_marked(&sub_id, &[pay_to(sup_addr, 2_500_000)], None, None).await?) },
    )
    .await;
    let s2 = stb2.clone();
    let (sub_id, sup_addr) = (sub.id.clone(), supplier.address);
    c.refused(
        "7. Subcontractor A pays the supplier 1 000 000 more: over its share of the level-2 limit",
        &["Subcontractor A", "Supplier (end)"],
        "marking level 2 allows",
        || async move { Ok(s2.pay_marked(&sub_id, &[pay_to(sup_addr, 1_000_000)], None, None).await?) },
    )
    .await;
    let standard = c.balance("Supplier (end)", "standard");
    c.check(
        "8. The end supplier holds 2 500 000 standard DT it may convert",
        &["Supplier (end)"],
        standard == dt(2_500_000).tiyn(),
        format!("{standard} tiyn"),
    );
    let _ = marked;
    Ok(())
}

async fn road_repairs(c: &mut Ctx) -> Result<(), DemoError> {
    let ga = c.open_da("GA (road fund)", ids::TREASURY, HolderKind::GovernmentAgency, 50_000_000).await?;
    let gc = c.open_da("General contractor", "STB1", HolderKind::LegalEntity, 0).await?;
    let sub = c.open_da("Subcontractor", "STB2", HolderKind::LegalEntity, 0).await?;
    let asphalt = c.open_da("Asphalt supplier (end)", "STB3", HolderKind::LegalEntity, 0).await?;
    c.adopt_institution("Subcontractor's bank (STB2)", "STB2-DA")?;
    let bank = c.account("Subcontractor's bank (STB2)")?;
    let parameter = id(ParameterId::new("GZ-2026-ROAD-17"))?;
    let ctx_param = parameter.clone();
    let (treasury_id, ga_addr) = (pid(ids::TREASURY)?, ga.address);
    let req = OracleRequest::RegisterParameter {
        id: ctx_param,
        initiator: ga_addr,
        initiator_node: treasury_id,
        title: "Repair of the A-2 road".into(),
    };
    let registered = c.provider("PORTAL", req).await;
    c.check(
        "1. The Smart Contract Portal registers state order GZ-2026-ROAD-17 on the oracle",
        &[],
        registered.is_ok(),
        format!("{registered:?}"),
    );
    let treasury = c.node(ids::TREASURY)?;
    let (t, p, gc_addr, ga_id) = (treasury.clone(), parameter.clone(), gc.address, ga.id.clone());
    c.step(
        "2. The GA marks 30 000 000 DT with the parameter to the general contractor",
        &["GA (road fund)", "General contractor"],
        || async move { Ok(t.mark_parameter(&ga_id, pay_to(gc_addr, 30_000_000), p, None).await?) },
    )
    .await;
    let until = c.now().plus_days(365);
    let c1 = Contract {
        number: id(ContractNo::new("C-1"))?,
        parameter: parameter.clone(),
        sender: gc.address,
        recipient: sub.address,
        max_transfer: dt(20_000_000),
        max_cashout: dt(5_000_000),
        valid_until: until,
        final_recipient: false,
    };
    let c2 = Contract {
        number: id(ContractNo::new("C-2"))?,
        parameter: parameter.clone(),
        sender: sub.address,
        recipient: asphalt.address,
        max_transfer: dt(8_000_000),
        max_cashout: Amount::ZERO,
        valid_until: until,
        final_recipient: true,
    };
    let portal_result = async {
        c.provider("PORTAL", OracleRequest::RegisterContract(c1)).await?;
        c.provider("PORTAL", OracleRequest::RegisterContract(c2)).await
    }
    .await;
    c.check("3. The Portal registers contracts C-1 (contractor → subcontractor, ≤ 20 000 000, cash-out ≤ 5 000 000) and C-2 (subcontractor → asphalt supplier, final, ≤ 8 000 000)", &[], portal_result.is_ok(), format!("{portal_result:?}"));
    let (stb1, stb2) = (c.node("STB1")?, c.node("STB2")?);
    let (s, p, gc_id, sub_addr) = (stb1.clone(), parameter.clone(), gc.id.clone(), sub.address);
    c.step(
        "4. The contractor pays the subcontractor 15 000 000 under C-1 (oracle-attested)",
        &["General contractor", "Subcontractor"],
        || async move {
            Ok(s.contract_payment(&gc_id, p, id(ContractNo::new("C-1"))?, pay_to(sub_addr, 15_000_000), false, None)
                .await?)
        },
    )
    .await;
    let (s, p, gc_id, sub_addr) = (stb1.clone(), parameter.clone(), gc.id.clone(), sub.address);
    c.refused(
        "5. 6 000 000 more under C-1 would exceed its 20 000 000 maximum",
        &["General contractor", "Subcontractor"],
        "oracle",
        || async move {
            Ok(s.contract_payment(&gc_id, p, id(ContractNo::new("C-1"))?, pay_to(sub_addr, 6_000_000), false, None)
                .await?)
        },
    )
    .await;
    let (s, p, sub_id, asphalt_addr) = (stb2.clone(), parameter.clone(), sub.id.clone(), asphalt.address);
    c.step(
        "6. The subcontractor pays the asphalt supplier 8 000 000 under C-2: the end supplier gets standard DT",
        &["Subcontractor", "Asphalt supplier (end)"],
        || async move {
            Ok(s.contract_payment(
                &sub_id,
                p,
                id(ContractNo::new("C-2"))?,
                pay_to(asphalt_addr, 8_000_000),
                false,
                None,
            )
            .await?)
        },
    )
    .await;
    let (s, p, sub_id, bank_addr) = (stb2.clone(), parameter.clone(), sub.id.clone(), bank.address);
    c.step(
        "7. The subcontractor cashes out 5 000 000 through its bank under C-1",
        &["Subcontractor", "Subcontractor's bank (STB2)"],
        || async move {
            Ok(s.contract_payment(&sub_id, p, id(ContractNo::new("C-1"))?, pay_to(bank_addr, 5_000_000), true, None)
                .await?)
        },
    )
    .await;
    let (s, p, sub_id, bank_addr) = (stb2.clone(), parameter.clone(), sub.id.clone(), bank.address);
    c.refused(
        "8. Another 1 000 000 cash-out is over the 5 000 000 cash-out cap",
        &["Subcontractor", "Subcontractor's bank (STB2)"],
        "oracle",
        || async move {
            Ok(s.contract_payment(&sub_id, p, id(ContractNo::new("C-1"))?, pay_to(bank_addr, 1_000_000), true, None)
                .await?)
        },
    )
    .await;
    let (s, sub_id, gc_addr) = (stb2.clone(), sub.id.clone(), gc.address);
    c.refused(
        "9. Marked funds cannot move by a plain transfer",
        &["Subcontractor", "General contractor"],
        "insufficient",
        || async move { Ok(s.pay(&sub_id, &[pay_to(gc_addr, 1_000)], None).await?) },
    )
    .await;
    Ok(())
}

fn event(id_text: &str) -> Result<EventId, DemoError> {
    id(EventId::new(id_text))
}

async fn farm_animals(c: &mut Ctx) -> Result<(), DemoError> {
    let sec = c.open_da("SEC (lender)", ids::TREASURY, HolderKind::GovernmentAgency, 10_000_000).await?;
    let seller = c.open_da("Farmer 2 (seller)", "STB2", HolderKind::Individual, 0).await?;
    c.open_da("Farmer 1 (borrower)", "STB1", HolderKind::Individual, 0).await?;
    let ev = event("IFA-2026-000451")?;
    let spec = EventSpec {
        id: ev.clone(),
        kind: EventKind::Single,
        sender: Some(sec.address),
        sender_node: Some(pid(ids::TREASURY)?),
        recipient: seller.address,
        recipient_node: pid("STB2")?,
        amount: Some(dt(3_500_000)),
        valid_until: c.now().plus_days(90),
    };
    let r = c.provider("IFA", OracleRequest::RegisterEvent(spec)).await;
    c.check(
        "1-4. Loan agreed; the purchase event is registered on the oracle (SEC → Farmer 2, 3 500 000)",
        &[],
        r.is_ok(),
        format!("{r:?}"),
    );
    let treasury = c.node(ids::TREASURY)?;
    let (t, sec_id, e) = (treasury.clone(), sec.id.clone(), ev.clone());
    c.step(
        "5. SEC holds 3 500 000 DT on its DA at the Treasury node (oracle-confirmed)",
        &["SEC (lender)"],
        || async move { Ok(t.hold(&sec_id, e, None).await?) },
    )
    .await;
    let told = c.node("STB2")?.notifications(&seller.id).iter().any(|n| n.text.contains("held for you"));
    c.check("6. Farmer 2 is told the funds are held for them", &["Farmer 2 (seller)"], told, "no notification".into());
    let (t, sec_id, seller_addr) = (treasury.clone(), sec.id.clone(), seller.address);
    c.refused("SEC cannot spend the held funds meanwhile", &["SEC (lender)"], "insufficient", || async move {
        Ok(t.pay(&sec_id, &[pay_to(seller_addr, 7_000_000)], None).await?)
    })
    .await;
    let r = c.provider("IFA", OracleRequest::ReportOccurrence { event: ev.clone(), amount: None }).await;
    c.check("7-8. Farmer 2 transfers the animals; the IFA reports it to the oracle", &[], r.is_ok(), format!("{r:?}"));
    let before = c.balance("Farmer 2 (seller)", "standard");
    c.tick().await;
    let after = c.balance("Farmer 2 (seller)", "standard");
    c.check(
        "8. The hold is released: Farmer 2 receives 3 500 000 DT",
        &["SEC (lender)", "Farmer 2 (seller)"],
        after == before + dt(3_500_000).tiyn(),
        format!("{before} → {after}"),
    );
    let again = c.provider("IFA", OracleRequest::ReportOccurrence { event: ev, amount: None }).await;
    c.check(
        "A second report of the same single event is refused by the oracle",
        &[],
        again.is_err(),
        format!("{again:?}"),
    );
    Ok(())
}

async fn investment_subsidies(c: &mut Ctx) -> Result<(), DemoError> {
    let dag =
        c.open_da("DAg (Ministry of Agriculture)", ids::TREASURY, HolderKind::GovernmentAgency, 40_000_000).await?;
    let lessor = c.open_da("Leasing company", "STB1", HolderKind::LegalEntity, 0).await?;
    let treasury = c.node(ids::TREASURY)?;
    let spec = |n: &str, tenge: u64, now: Timestamp| -> Result<EventSpec, DemoError> {
        Ok(EventSpec {
            id: event(n)?,
            kind: EventKind::Single,
            sender: Some(dag.address),
            sender_node: Some(pid(ids::TREASURY)?),
            recipient: lessor.address,
            recipient_node: pid("STB1")?,
            amount: Some(dt(tenge)),
            valid_until: now.plus_days(180),
        })
    };
    let r = c.provider("SSIS", OracleRequest::RegisterEvent(spec("SSIS-2026-INV-1", 25_000_000, c.now())?)).await;
    c.check(
        "1-4. The SSIS approves the application; the event is registered (valid 180 days)",
        &[],
        r.is_ok(),
        format!("{r:?}"),
    );
    let (t, dag_id) = (treasury.clone(), dag.id.clone());
    c.step("5. DAg holds 25 000 000 DT", &["DAg (Ministry of Agriculture)"], || async move {
        Ok(t.hold(&dag_id, event("SSIS-2026-INV-1")?, None).await?)
    })
    .await;
    let r =
        c.provider("SSIS", OracleRequest::ReportOccurrence { event: event("SSIS-2026-INV-1")?, amount: None }).await;
    c.tick().await;
    let got = c.balance("Leasing company", "standard");
    c.check(
        "7-8. The lessor proves delivery; the SSIS trigger releases 25 000 000 to it",
        &["DAg (Ministry of Agriculture)", "Leasing company"],
        r.is_ok() && got == dt(25_000_000).tiyn(),
        format!("{r:?}, {got}"),
    );
    // Second case: no trigger within 180 days.
    let r = c.provider("SSIS", OracleRequest::RegisterEvent(spec("SSIS-2026-INV-2", 10_000_000, c.now())?)).await;
    let (t, dag_id) = (treasury.clone(), dag.id.clone());
    c.step(
        "A second subsidy: event registered and 10 000 000 DT held",
        &["DAg (Ministry of Agriculture)"],
        || async move {
            r?;
            Ok(t.hold(&dag_id, event("SSIS-2026-INV-2")?, None).await?)
        },
    )
    .await;
    c.clock.advance(179 * Timestamp::DAY_MS);
    c.tick().await;
    let held = c.balance("DAg (Ministry of Agriculture)", "held");
    c.check(
        "After 179 days without a trigger the funds are still held",
        &["DAg (Ministry of Agriculture)"],
        held == dt(10_000_000).tiyn(),
        format!("{held}"),
    );
    c.clock.advance(2 * Timestamp::DAY_MS);
    let late =
        c.provider("SSIS", OracleRequest::ReportOccurrence { event: event("SSIS-2026-INV-2")?, amount: None }).await;
    c.check("A trigger after valid-until is refused by the oracle", &[], late.is_err(), format!("{late:?}"));
    c.tick().await;
    let (held, standard) =
        (c.balance("DAg (Ministry of Agriculture)", "held"), c.balance("DAg (Ministry of Agriculture)", "standard"));
    c.check(
        "9. After 180 days the 10 000 000 DT return to DAg's DA on the Treasury node",
        &["DAg (Ministry of Agriculture)", "Leasing company"],
        held == 0 && standard == dt(15_000_000).tiyn(),
        format!("held {held}, standard {standard}"),
    );
    Ok(())
}

async fn digital_vat(c: &mut Ctx) -> Result<(), DemoError> {
    let le1 = c.open_da("LE 1", "STB1", HolderKind::LegalEntity, 2_000).await?;
    let le2 = c.open_da("LE 2", "STB2", HolderKind::LegalEntity, 0).await?;
    let le3 = c.open_da("LE 3", "STB3", HolderKind::LegalEntity, 0).await?;
    let shop = c.open_da("A shop", "STB3", HolderKind::LegalEntity, 0).await?;
    c.adopt_institution("Tax authority (SRC)", ids::TAX_DA)?;
    let inv = |n: &str,
               seller: dtenge_types::Address,
               buyer: dtenge_types::Address,
               net: u64,
               vat: u64|
     -> Result<Invoice, DemoError> {
        Ok(Invoice { id: id(InvoiceId::new(n))?, seller, buyer, net: dt(net), vat: dt(vat) })
    };
    let r1 = c
        .provider("SRC", OracleRequest::RegisterInvoice(inv("EI-2026-0001", le2.address, le1.address, 1_000, 120)?))
        .await;
    let r2 = c
        .provider("SRC", OracleRequest::RegisterInvoice(inv("EI-2026-0002", le3.address, le2.address, 500, 60)?))
        .await;
    c.check("Prerequisite: the SRC registered e-invoices EI-1 (LE2 → LE1, 1 000 + 120 VAT) and EI-2 (LE3 → LE2, 500 + 60 VAT)", &[], r1.is_ok() && r2.is_ok(), format!("{r1:?} {r2:?}"));
    let (stb1, stb2, stb3) = (c.node("STB1")?, c.node("STB2")?, c.node("STB3")?);
    let (s, le1_id) = (stb1.clone(), le1.id.clone());
    c.step(
        "1-3. LE 1 pays EI-1 of 1 120: LE 2 receives 1 000 standard and 120 VAT tokens",
        &["LE 1", "LE 2"],
        || async move { Ok(s.pay_invoice(&le1_id, id(InvoiceId::new("EI-2026-0001"))?).await?) },
    )
    .await;
    let (s, le2_id) = (stb2.clone(), le2.id.clone());
    c.step(
        "4-5. LE 2 pays EI-2 of 560 with 500 standard and 60 of its own VAT tokens",
        &["LE 2", "LE 3"],
        || async move { Ok(s.pay_invoice(&le2_id, id(InvoiceId::new("EI-2026-0002"))?).await?) },
    )
    .await;
    let (s, le2_id, shop_addr) = (stb2.clone(), le2.id.clone(), shop.address);
    c.refused(
        "LE 2 tries to spend VAT tokens at a shop: VAT tokens go only to an e-invoice's VAT part or the tax authority",
        &["LE 2", "A shop"],
        "insufficient",
        || async move { Ok(s.pay(&le2_id, &[pay_to(shop_addr, 560)], None).await?) },
    )
    .await;
    let (s, le1_id) = (stb1.clone(), le1.id.clone());
    c.refused("LE 1 tries to pay EI-1 again: an e-invoice is paid once", &["LE 1"], "already paid", || async move {
        Ok(s.pay_invoice(&le1_id, id(InvoiceId::new("EI-2026-0001"))?).await?)
    })
    .await;
    let (s2, le2_id) = (stb2.clone(), le2.id.clone());
    c.step("6. LE 2 pays its 60 VAT to the SRC", &["LE 2", "Tax authority (SRC)"], || async move {
        Ok(s2.pay_vat(&le2_id, dt(60)).await?)
    })
    .await;
    let (s3, le3_id) = (stb3.clone(), le3.id.clone());
    c.step("6. LE 3 pays its 60 VAT to the SRC", &["LE 3", "Tax authority (SRC)"], || async move {
        Ok(s3.pay_vat(&le3_id, dt(60)).await?)
    })
    .await;
    let (std_src, vat_src) = (c.balance("Tax authority (SRC)", "standard"), c.balance("Tax authority (SRC)", "vat"));
    c.check(
        "7. The tax authority ends with 120 standard DT (no VAT tokens)",
        &["Tax authority (SRC)"],
        std_src == dt(120).tiyn() && vat_src == 0,
        format!("standard {std_src}, vat {vat_src}"),
    );
    Ok(())
}

async fn cryptocard(c: &mut Ctx) -> Result<(), DemoError> {
    let exchange = c.open_da("Crypto exchange", "STB1", HolderKind::LegalEntity, 2_000_000).await?;
    let issuer = c.adopt_institution("STB-Issuer (STB1)", "STB1-DA")?;
    let stb1 = c.node("STB1")?;
    let mandate = id(MandateId::new("CARD-2026-0007"))?;
    let (s, ex_id, m, grantee, until) =
        (stb1.clone(), exchange.id.clone(), mandate.clone(), issuer.address, c.now().plus_days(30));
    c.step(
        "Setup: the exchange authorises its bank (STB-Issuer) to debit up to 1 000 000 DT from its DA",
        &["Crypto exchange"],
        || async move { Ok(s.grant_mandate(&ex_id, m, grantee, dt(1_000_000), until).await?) },
    )
    .await;
    let (s, issuer_id, ex_id, m, to) =
        (stb1.clone(), issuer.id.clone(), exchange.id.clone(), mandate.clone(), issuer.address);
    c.step(
        "1-6. A card purchase of 25 000: the exchange confirms; the issuer debits the exchange's DA through the API",
        &["Crypto exchange", "STB-Issuer (STB1)"],
        || async move { Ok(s.debit(&issuer_id, &ex_id, &m, pay_to(to, 25_000), None).await?) },
    )
    .await;
    let (s, issuer_id, ex_id, m, to) =
        (stb1.clone(), issuer.id.clone(), exchange.id.clone(), mandate.clone(), issuer.address);
    c.refused(
        "A debit beyond the authorised reserve is refused",
        &["Crypto exchange", "STB-Issuer (STB1)"],
        "insufficient",
        || async move { Ok(s.debit(&issuer_id, &ex_id, &m, pay_to(to, 2_000_000), None).await?) },
    )
    .await;
    let (s, ex_id, m) = (stb1.clone(), exchange.id.clone(), mandate.clone());
    c.step(
        "The exchange revokes the mandate: the unused 975 000 DT become free again",
        &["Crypto exchange"],
        || async move { Ok(s.revoke_mandate(&ex_id, &m).await?) },
    )
    .await;
    let standard = c.balance("Crypto exchange", "standard");
    c.check(
        "7-8. The exchange paid exactly the card amount",
        &["Crypto exchange"],
        standard == dt(1_975_000).tiyn(),
        format!("{standard}"),
    );
    Ok(())
}

async fn vouchers(c: &mut Ctx) -> Result<(), DemoError> {
    let school = c.open_da("School No. 12", ids::TREASURY, HolderKind::GovernmentAgency, 500_000).await?;
    let canteen = c.open_da("Canteen operator", "STB2", HolderKind::LegalEntity, 0).await?;
    let ev = event("MEALS-SCHOOL12-2026-01")?;
    let spec = EventSpec {
        id: ev.clone(),
        kind: EventKind::Recurring,
        sender: Some(school.address),
        sender_node: Some(pid(ids::TREASURY)?),
        recipient: canteen.address,
        recipient_node: pid("STB2")?,
        amount: Some(dt(300_000)),
        valid_until: c.now().plus_days(31),
    };
    let r = c.provider("TERMINALS", OracleRequest::RegisterEvent(spec)).await;
    let (t, school_id, e) = (c.node(ids::TREASURY)?, school.id.clone(), ev.clone());
    c.step(
        "The school's meal budget (300 000 DT) is held for the canteen (recurring)",
        &["School No. 12", "Canteen operator"],
        || async move {
            r?;
            Ok(t.hold(&school_id, e, None).await?)
        },
    )
    .await;
    for meal in 1..=3 {
        let r = c
            .provider("TERMINALS", OracleRequest::ReportOccurrence { event: ev.clone(), amount: Some(dt(1_500)) })
            .await;
        c.tick().await;
        let got = c.balance("Canteen operator", "standard");
        c.check(
            &format!("Meal {meal}: a card swipe is reported; 1 500 DT go to the canteen"),
            &["School No. 12", "Canteen operator"],
            r.is_ok() && got == dt(1_500 * meal).tiyn(),
            format!("{r:?} {got}"),
        );
    }
    let held = c.balance("School No. 12", "held");
    c.check(
        "The rest stays held for further meals",
        &["School No. 12"],
        held == dt(300_000 - 4_500).tiyn(),
        format!("{held}"),
    );
    let (t, school_id, canteen_addr) = (c.node(ids::TREASURY)?, school.id.clone(), canteen.address);
    c.refused(
        "The school cannot hand the held budget to the canteen without meals",
        &["School No. 12", "Canteen operator"],
        "insufficient",
        || async move { Ok(t.pay(&school_id, &[pay_to(canteen_addr, 250_000)], None).await?) },
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
    let campaign = |n: &str, target: u64| -> Result<EventSpec, DemoError> {
        Ok(EventSpec {
            id: event(n)?,
            kind: EventKind::Campaign { target: dt(target) },
            sender: None,
            sender_node: None,
            recipient: beneficiary.address,
            recipient_node: pid("STB3")?,
            amount: None,
            valid_until: deadline,
        })
    };
    let a = c.provider("CROWD", OracleRequest::RegisterEvent(campaign("CAMPAIGN-A", 1_000_000)?)).await;
    let b = c.provider("CROWD", OracleRequest::RegisterEvent(campaign("CAMPAIGN-B", 2_000_000)?)).await;
    c.check(
        "Two campaigns for the charity: A (target 1 000 000), B (target 2 000 000), deadline in 30 days",
        &[],
        a.is_ok() && b.is_ok(),
        format!("{a:?} {b:?}"),
    );
    for (label, node, amount) in backers {
        let n = c.node(node)?;
        let acct = c.account(label)?.id;
        c.step(&format!("{label} contributes {amount} to campaign A (held)"), &[label], || async move {
            Ok(n.hold(&acct, event("CAMPAIGN-A")?, Some(dt(amount))).await?)
        })
        .await;
    }
    for (label, node, amount) in [("Backer 1", "STB1", 500_000u64), ("Backer 2", "STB2", 300_000)] {
        let n = c.node(node)?;
        let acct = c.account(label)?.id;
        c.step(&format!("{label} contributes {amount} to campaign B (held)"), &[label], || async move {
            Ok(n.hold(&acct, event("CAMPAIGN-B")?, Some(dt(amount))).await?)
        })
        .await;
    }
    let (n, acct) = (c.node("STB1")?, c.account("Backer 1")?.id);
    c.refused(
        "Before the deadline nothing can be released to the charity",
        &["Backer 1", "Charity fund"],
        "nothing is releasable",
        || async move { Ok(n.release(&acct, &event("CAMPAIGN-A")?).await?) },
    )
    .await;
    c.clock.advance(31 * Timestamp::DAY_MS);
    let (n, acct) = (c.node("STB1")?, c.account("Backer 3")?.id);
    c.refused("A contribution after the deadline is refused by the oracle", &["Backer 3"], "oracle", || async move {
        Ok(n.hold(&acct, event("CAMPAIGN-B")?, Some(dt(100_000))).await?)
    })
    .await;
    c.tick().await;
    c.tick().await;
    let got = c.balance("Charity fund", "standard");
    c.check(
        "At the deadline campaign A met its target: the charity receives all 1 100 000",
        &["Charity fund"],
        got == dt(1_100_000).tiyn(),
        format!("{got}"),
    );
    let b1 = c.balance("Backer 1", "standard");
    let b2 = c.balance("Backer 2", "standard");
    c.check(
        "Campaign B missed its target: every contribution returned to its contributor",
        &["Backer 1", "Backer 2"],
        b1 == dt(600_000).tiyn() && b2 == dt(600_000).tiyn(),
        format!("{b1} {b2}"),
    );
    Ok(())
}

async fn escrow(c: &mut Ctx) -> Result<(), DemoError> {
    let buyer = c.open_da("Buyer", "STB1", HolderKind::Individual, 35_000_000).await?;
    let seller = c.open_da("Seller", "STB2", HolderKind::Individual, 0).await?;
    let ev = event("EGOV-TITLE-2026-5521")?;
    let spec = EventSpec {
        id: ev.clone(),
        kind: EventKind::Single,
        sender: Some(buyer.address),
        sender_node: Some(pid("STB1")?),
        recipient: seller.address,
        recipient_node: pid("STB2")?,
        amount: Some(dt(30_000_000)),
        valid_until: c.now().plus_days(60),
    };
    let r = c.provider("EGOV", OracleRequest::RegisterEvent(spec)).await;
    let (s, buyer_id, e) = (c.node("STB1")?, buyer.id.clone(), ev.clone());
    c.step(
        "The buyer holds 30 000 000 DT until the register confirms the title transfer",
        &["Buyer", "Seller"],
        || async move {
            r?;
            Ok(s.hold(&buyer_id, e, None).await?)
        },
    )
    .await;
    let (s, buyer_id, e) = (c.node("STB1")?, buyer.id.clone(), ev.clone());
    c.refused(
        "Nothing can be released before the register confirms",
        &["Buyer", "Seller"],
        "nothing is releasable",
        || async move { Ok(s.release(&buyer_id, &e).await?) },
    )
    .await;
    let r = c.provider("EGOV", OracleRequest::ReportOccurrence { event: ev, amount: None }).await;
    c.tick().await;
    let got = c.balance("Seller", "standard");
    c.check(
        "The register confirms the new owner: the seller receives 30 000 000",
        &["Buyer", "Seller"],
        r.is_ok() && got == dt(30_000_000).tiyn(),
        format!("{r:?} {got}"),
    );
    Ok(())
}

async fn taxi_split(c: &mut Ctx) -> Result<(), DemoError> {
    let rider = c.open_da("Rider", "STB1", HolderKind::Individual, 5_000).await?;
    let driver = c.open_da("Driver", "STB2", HolderKind::Individual, 0).await?;
    let operator = c.open_da("Taxi operator", "STB3", HolderKind::LegalEntity, 0).await?;
    c.adopt_institution("Tax authority (SRC)", ids::TAX_DA)?;
    let tax = c.account("Tax authority (SRC)")?;
    let s = c.node("STB1")?;
    let (rider_id, to) = (
        rider.id.clone(),
        vec![pay_to(driver.address, 1_600), pay_to(operator.address, 300), pay_to(tax.address, 100)],
    );
    let done = c
        .step("One payment of 2 000: 1 600 to the driver, 300 commission to the operator, 100 tax — three banks, one transaction", &["Rider", "Driver", "Taxi operator", "Tax authority (SRC)"], || async move {
            Ok(s.pay(&rider_id, &to, None).await?)
        })
        .await;
    let one_tx = done.is_some_and(|d| {
        let n = c.platform.node("STB1").ok();
        n.is_some_and(|n| n.read(|st| st.outgoing.get(&d.tx).is_some_and(|o| o.tx.body.outputs.len() >= 3)))
    });
    c.check("All three recipients were paid by the same atomic transaction", &[], one_tx, "not one transaction".into());
    let s = c.node("STB1")?;
    let (rider_id, to) = (rider.id.clone(), vec![pay_to(driver.address, 3_000), pay_to(operator.address, 100)]);
    c.refused(
        "A split larger than the balance pays nobody",
        &["Rider", "Driver", "Taxi operator"],
        "insufficient",
        || async move { Ok(s.pay(&rider_id, &to, None).await?) },
    )
    .await;
    Ok(())
}

async fn health_insurance(c: &mut Ctx) -> Result<(), DemoError> {
    let insurer = c.open_da("Insurance company", "STB3", HolderKind::LegalEntity, 2_000_000).await?;
    let insured = c.open_da("Insured person", "STB1", HolderKind::Individual, 0).await?;
    let clinic_a = c.open_da("Licensed clinic A", "STB2", HolderKind::LegalEntity, 0).await?;
    let clinic_b = c.open_da("Licensed clinic B", "STB3", HolderKind::LegalEntity, 0).await?;
    let pharmacy = c.open_da("Unlicensed provider", "STB2", HolderKind::LegalEntity, 0).await?;
    let rule = MarkingRule {
        reference: id(MarkingRef::new("OSMS-2026-POLICY-88"))?,
        initiator: insurer.address,
        initiator_node: pid("STB3")?,
        levels: id(vec![MarkingLevel {
            recipients: id(vec![clinic_a.address, clinic_b.address].try_into())?,
            limit: dt(500_000),
        }]
        .try_into())?,
    };
    let (s, insurer_id, to) = (c.node("STB3")?, insurer.id.clone(), pay_to(insured.address, 500_000));
    c.step(
        "The insurer puts 500 000 DT of treatment money on the insured person's DA, spendable only at licensed clinics",
        &["Insurance company", "Insured person"],
        || async move { Ok(s.mark_address(&insurer_id, to, rule, None).await?) },
    )
    .await;
    let (s, insured_id, to) = (c.node("STB1")?, insured.id.clone(), pay_to(clinic_a.address, 120_000));
    c.step(
        "The insured pays licensed clinic A 120 000: the clinic receives standard DT",
        &["Insured person", "Licensed clinic A"],
        || async move { Ok(s.pay_marked(&insured_id, &[to], None, None).await?) },
    )
    .await;
    let (s, insured_id, to) = (c.node("STB1")?, insured.id.clone(), pay_to(pharmacy.address, 50_000));
    c.refused(
        "Paying an unlicensed provider is refused",
        &["Insured person", "Unlicensed provider"],
        "not allowed",
        || async move { Ok(s.pay_marked(&insured_id, &[to], None, None).await?) },
    )
    .await;
    Ok(())
}

async fn cross_border(c: &mut Ctx) -> Result<(), DemoError> {
    let kz = c.adopt_institution("Kazakh bank (STB1)", "STB1-DA")?;
    let foreign = c.adopt_institution("Foreign bank", ids::FOREIGN_BANK_DA)?;
    let fcb_da = c.adopt_institution("Foreign central bank", ids::FCB_DA)?;
    let fcy = id(Currency::new(ids::FOREIGN_CURRENCY))?;
    let stb1 = c.node("STB1")?;
    c.fund("STB1", &kz, dt(200_000)).await.ok();
    let fcb = c.node(ids::FCB)?;
    let (f, fcb_id, to) = (fcb.clone(), fcb_da.id.clone(), pay_to(foreign.address, 1_000));
    c.step("The foreign central bank issues 1 000 FCY to the foreign bank", &["Foreign bank"], || async move {
        Ok(f.issue(&fcb_id, to, id(CbsRef::new("FCB-CBS-1"))?).await?)
    })
    .await;
    let rate =
        FxRate { base: Currency::DT, quote: fcy, numerator: 1, denominator: 125, valid_until: c.now().plus_days(1) };
    let r = c.provider("FXDESK", OracleRequest::SetRate(rate)).await;
    c.check("The FX oracle publishes 1 FCY = 125 DT", &[], r.is_ok(), format!("{r:?}"));
    let (s, kz_id, to) = (stb1.clone(), kz.id.clone(), foreign.address);
    c.step(
        "PvP: 12 500 DT against 100 FCY, both legs in one transaction",
        &["Kazakh bank (STB1)", "Foreign bank"],
        || async move { Ok(s.pvp(&kz_id, to, Currency::DT, dt(12_500), fcy).await?) },
    )
    .await;
    let (s, kz_id, to) = (stb1.clone(), kz.id.clone(), foreign.address);
    c.refused(
        "A PvP whose foreign leg cannot be paid (1 200 FCY needed, 900 held) moves nothing on either side",
        &["Kazakh bank (STB1)", "Foreign bank"],
        "refused",
        || async move { Ok(s.pvp(&kz_id, to, Currency::DT, dt(150_000), fcy).await?) },
    )
    .await;
    Ok(())
}
