//! Property tests of the domain rules.

use domain::image::{fit_within, oriented_dimensions, variant_key};
use domain::order::{Money, Order, OrderLine, OrderStatus, Reservation};
use domain::page_token::PageTokens;
use domain::ports::{OrderStore, MAX_OBJECT_KEY_BYTES};
use domain::testing::InMemoryOrderStore;
use proptest::prelude::*;

fn order(id: usize, lines: &[(usize, u32)]) -> Order {
    Order {
        order_id: format!("o{id}"),
        user_id: "u".into(),
        items: lines
            .iter()
            .map(|(p, q)| OrderLine {
                product_id: format!("p{p}"),
                quantity: *q,
            })
            .collect(),
        total: Money(100),
        status: OrderStatus::PendingPayment,
        short_items: vec![],
        created_at: "t".into(),
        payment_requested: false,
        outcome_notified: false,
        notification_sent: false,
    }
}

proptest! {
    /// Whatever orders arrive, in whatever order, with repeats: stock never goes negative and ends at
    /// initial minus what the accepted orders took; a repeated id never deducts twice.
    #[test]
    fn stock_is_never_negative_and_adds_up(
        initial in proptest::collection::vec(0i64..50, 4),
        orders in proptest::collection::vec(
            (0usize..30, proptest::collection::btree_map(0usize..4, 1u32..20, 1..4)), 1..60),
    ) {
        let store = InMemoryOrderStore::default();
        for (p, q) in initial.iter().enumerate() {
            store.set_stock(&format!("p{p}"), *q);
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut taken = [0i64; 4];
        let mut accepted = std::collections::BTreeSet::new();
        for (id, lines) in &orders {
            let lines: Vec<(usize, u32)> = lines.iter().map(|(p, q)| (*p, *q)).collect();
            let result = rt.block_on(store.reserve(&order(*id, &lines))).unwrap();
            match result {
                Reservation::Reserved => {
                    prop_assert!(accepted.insert(*id), "order {} reserved twice", id);
                    for (p, q) in &lines {
                        taken[*p] += i64::from(*q);
                    }
                }
                Reservation::AlreadyExists => prop_assert!(accepted.contains(id)),
                Reservation::InsufficientStock(short) => prop_assert!(!short.is_empty()),
            }
        }
        for p in 0..4 {
            let left = store.stock(&format!("p{p}")).unwrap();
            prop_assert!(left >= 0);
            prop_assert_eq!(left, initial[p] - taken[p]);
        }
    }

    #[test]
    fn page_tokens_round_trip_and_reject_any_change(cursor in "[ -~]{0,64}", key in "[a-z]{1,16}", at in 0usize..200, with in any::<char>()) {
        let tokens = PageTokens::new(key.as_bytes());
        let token = tokens.sign(&cursor);
        prop_assert_eq!(tokens.verify(&token).unwrap(), cursor);
        let chars: Vec<char> = token.chars().collect();
        let at = at % chars.len();
        if chars[at] != with {
            let mut changed = chars.clone();
            changed[at] = with;
            let changed: String = changed.into_iter().collect();
            prop_assert!(tokens.verify(&changed).is_err(), "accepted a changed token");
        }
        let other_key = format!("{}x", key);
        prop_assert!(PageTokens::new(other_key.as_bytes()).verify(&token).is_err());
    }

    #[test]
    fn different_uploads_never_share_a_variant_key(
        stem in "\\PC{0,400}",
        endings in proptest::collection::vec(
            prop::sample::select(vec!["", ".png", ".jpg", ".webp", ".jpg.jpg", ".JPG", ".jpg.webp", "/a", ".sha256"]),
            2..5,
        ),
    ) {
        // Keys S3 accepts: 1 to 1024 bytes (the stem cut at a character boundary to leave room).
        let mut cut = stem.len().min(MAX_OBJECT_KEY_BYTES - 9);
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut sources: Vec<String> = endings.iter().map(|e| format!("{}{e}", &stem[..cut])).collect();
        sources.retain(|k| !k.is_empty());
        sources.sort();
        sources.dedup();
        let mut outputs = std::collections::HashSet::new();
        let mut inputs = 0;
        for source in &sources {
            for variant in ["thumbnail", "a", "large-2", "a-very-long-variant-name-of-32ch"] {
                for extension in ["jpg", "webp"] {
                    let key = variant_key(variant, source, extension);
                    prop_assert!(key.len() <= MAX_OBJECT_KEY_BYTES, "{} bytes", key.len());
                    let readable = format!("{variant}/{source}.{extension}");
                    if readable.len() <= MAX_OBJECT_KEY_BYTES {
                        prop_assert_eq!(&key, &readable);
                    }
                    outputs.insert(key);
                    inputs += 1;
                }
            }
        }
        prop_assert_eq!(outputs.len(), inputs, "two uploads share a variant key");
    }

    #[test]
    fn variants_fit_the_box_keep_the_aspect_and_never_upscale(w in 1u32..20_000, h in 1u32..20_000, edge in 1u32..10_000) {
        let (fw, fh) = fit_within(w, h, edge);
        prop_assert!(fw >= 1 && fh >= 1);
        prop_assert!(fw <= w && fh <= h, "upscaled");
        prop_assert!(fw <= edge && fh <= edge, "outside the box");
        if w > edge || h > edge {
            prop_assert!(fw == edge || fh == edge, "a downscaled image touches the box");
            // Aspect ratio within rounding of one pixel on the short side.
            let exact = f64::from(w.min(h)) * f64::from(edge) / f64::from(w.max(h));
            prop_assert!((f64::from(fw.min(fh)) - exact).abs() <= 1.0);
        } else {
            prop_assert_eq!((fw, fh), (w, h));
        }
        for o in 1..=8u8 {
            let (ow, oh) = oriented_dimensions(w, h, o);
            prop_assert_eq!(ow * oh, w * h);
        }
    }

    #[test]
    fn money_round_trips_exactly(cents in 0i64..1_000_000_000_000) {
        let text = Money(cents).to_string();
        prop_assert_eq!(Money::parse_decimal(&text).unwrap(), Money(cents));
    }
}
