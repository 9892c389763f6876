//! The ACL classifier per packet (fpga-virtio-flow): one tenant's 10 000 rules, as an operator
//! writes them (allow lists by destination port, subnets allowed or denied at the usual prefix
//! lengths, IPv4 and IPv6, a default deny), and packets that hit a port rule, a subnet rule, or
//! nothing (the default). `cargo bench -p fpga-virtio-benches --bench acl`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fpga_virtio_benches::acl_rules as rules;
use fpga_virtio_flow::acl::{Classifier, IpNet, Tuple, Verdict};
use std::net::{IpAddr, Ipv4Addr};

fn bench(c: &mut Criterion) {
    let rules = rules(10_000);
    let classifier = Classifier::new(rules.clone(), Verdict::Deny).expect("compiles");
    // A packet to rule 0's port and subnet, one to rule 1's subnet pair, one matching nothing.
    let t0 = {
        let IpNet::V4(d, _) = rules[0].dst.unwrap() else {
            unreachable!()
        };
        Tuple {
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
            dst: IpAddr::V4(Ipv4Addr::from(u32::from(d) | 7)),
            proto: 6,
            src_port: 40000,
            dst_port: rules[0].dst_ports.lo,
        }
    };
    let t1 = {
        let IpNet::V4(s, _) = rules[1].src.unwrap() else {
            unreachable!()
        };
        let IpNet::V4(d, _) = rules[1].dst.unwrap() else {
            unreachable!()
        };
        Tuple {
            src: IpAddr::V4(Ipv4Addr::from(u32::from(s) | 9)),
            dst: IpAddr::V4(Ipv4Addr::from(u32::from(d) | 0x0109)),
            proto: 17,
            src_port: 5353,
            dst_port: 53,
        }
    };
    let miss = Tuple {
        src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        proto: 6,
        src_port: 1,
        dst_port: 2,
    };
    assert!(classifier.classify(&t0).1.is_some() && classifier.classify(&t1).1.is_some());
    assert_eq!(classifier.classify(&miss), (Verdict::Deny, None));
    let mut g = c.benchmark_group("acl_10k_rules");
    g.bench_function("port_rule_hit", |b| {
        b.iter(|| classifier.classify(black_box(&t0)))
    });
    g.bench_function("subnet_rule_hit", |b| {
        b.iter(|| classifier.classify(black_box(&t1)))
    });
    g.bench_function("no_rule_default", |b| {
        b.iter(|| classifier.classify(black_box(&miss)))
    });
    g.bench_function("compile", |b| {
        b.iter(|| Classifier::new(black_box(rules.clone()), Verdict::Deny))
    });
    g.finish();
    eprintln!(
        "acl: {} rules in {} tables",
        rules.len(),
        classifier.tables()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
