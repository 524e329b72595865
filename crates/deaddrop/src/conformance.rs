//! The [`KvStore`] contract as executable checks, for the test suites of backends
//! (feature `conformance`).
//!
//! The contract is written once, here; each backend's tests open a live store (a real
//! database, server, node or testnet) and run these checks against it, adding only what is
//! particular to that backend. A check panics with a sentence naming the broken rule, like
//! an assertion in a test.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use deaddrop::conformance;
//!
//! let store = deaddrop::LocalStore::temporary(Default::default()).expect("a temporary store");
//! conformance::round_trip_and_write_once(&store, Duration::from_secs(1)).await;
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::codec::envelope_to_bytes;
use crate::{ARID, Envelope, Error, KvStore, Receipt};

/// An envelope whose tagged CBOR encoding (what size limits count) is exactly `size` bytes:
/// a byte-string subject of patterned bytes.
///
/// # Panics
/// If `size` is under 5, the smallest such envelope.
pub fn envelope_of_size(size: usize) -> Envelope {
    // Envelope tag (2 bytes) + leaf tag (2 bytes) + byte-string header + payload.
    let header = |n: usize| match n {
        0..24 => 1,
        24..256 => 2,
        256..65_536 => 3,
        65_536..=0xffff_ffff => 5,
        _ => 9,
    };
    let Some(payload_len) = [1, 2, 3, 5, 9]
        .into_iter()
        .filter_map(|h| size.checked_sub(4 + h))
        .find(|&n| 4 + header(n) + n == size)
    else {
        panic!("no byte-string envelope encodes to exactly {size} bytes");
    };
    let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8).collect();
    let envelope = Envelope::new(dcbor::ByteString::from(payload));
    assert_eq!(envelope_to_bytes(&envelope).len(), size);
    envelope
}

/// The text subject of `envelope`.
///
/// # Panics
/// If the subject is not a text string.
pub fn text_of(envelope: &Envelope) -> String {
    match envelope.extract_subject::<String>() {
        Ok(text) => text,
        Err(e) => panic!("the envelope's subject is not text: {e}"),
    }
}

/// Panics unless `a` and `b` encode to the same bytes.
pub fn assert_same_envelope(a: &Envelope, b: &Envelope) {
    assert!(
        envelope_to_bytes(a) == envelope_to_bytes(b),
        "the envelopes differ: {} against {}",
        a.format_flat(),
        b.format_flat()
    );
}

fn expect_ok<T>(what: &str, result: crate::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// A fresh ARID is absent; a put stores and reports the backend; the ARID then exists; a
/// second put with another value is [`Error::AlreadyExists`]; the same value again too
/// (write-once, not idempotent); and a get returns the first value. Returns the put's receipt
/// for backend-specific checks.
pub async fn round_trip_and_write_once(store: &dyn KvStore, wait: Duration) -> Receipt {
    let arid = ARID::new();
    let first = Envelope::new("first");
    assert!(
        !expect_ok("exists of a fresh ARID", store.exists(&arid).await),
        "a fresh ARID exists"
    );
    let receipt = expect_ok("the first put", store.put(&arid, &first, None).await);
    assert_eq!(
        receipt.backend,
        store.backend(),
        "the receipt names another backend"
    );
    assert!(
        expect_ok("exists after the put", store.exists(&arid).await),
        "the ARID does not exist after its put"
    );
    for (what, value) in [
        ("another value", Envelope::new("second")),
        ("the same value", first.clone()),
    ] {
        match store.put(&arid, &value, None).await {
            Err(Error::AlreadyExists) => {}
            other => panic!("a second put with {what} gave {other:?}, not AlreadyExists"),
        }
    }
    let got = expect_ok("the get", store.get(&arid, wait).await);
    match got {
        Some(got) => assert_same_envelope(&got, &first),
        None => panic!("the get found nothing within {wait:?}"),
    }
    receipt
}

/// A get of an ARID nobody wrote waits the whole `timeout`, then returns `None`; the ARID
/// does not exist.
pub async fn absent_is_none_at_the_timeout(store: &dyn KvStore, timeout: Duration) {
    let arid = ARID::new();
    let started = Instant::now();
    let got = expect_ok("the get of an absent ARID", store.get(&arid, timeout).await);
    let waited = started.elapsed();
    assert!(got.is_none(), "an ARID nobody wrote has a value");
    assert!(
        waited >= timeout,
        "the get gave up after {waited:?}, before its {timeout:?}"
    );
    assert!(
        !expect_ok("exists of an absent ARID", store.exists(&arid).await),
        "an ARID nobody wrote exists"
    );
}

/// A get through `reader` that starts before the put through `writer` (`delay` later)
/// returns the value once it is there, within `wait`.
pub async fn get_waits_for_a_later_put(
    reader: Arc<dyn KvStore>,
    writer: Arc<dyn KvStore>,
    delay: Duration,
    wait: Duration,
) {
    let arid = ARID::new();
    let waiting = tokio::spawn(async move { reader.get(&arid, wait).await });
    tokio::time::sleep(delay).await;
    expect_ok(
        "the late put",
        writer.put(&arid, &Envelope::new("late"), None).await,
    );
    match waiting.await {
        Ok(Ok(Some(got))) => assert_eq!(text_of(&got), "late"),
        Ok(Ok(None)) => panic!("the waiting get gave up within {wait:?} though the put landed"),
        Ok(Err(e)) => panic!("the waiting get failed: {e}"),
        Err(e) => panic!("the waiting get's task failed: {e}"),
    }
}

/// `writers` tasks put different values at one ARID through one store at once: exactly one
/// succeeds, every other is [`Error::AlreadyExists`], and a get returns the winner's value.
pub async fn concurrent_writers_one_wins(store: Arc<dyn KvStore>, writers: usize, wait: Duration) {
    let arid = ARID::new();
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let result = store
                    .put(&arid, &Envelope::new(format!("writer {i}")), None)
                    .await;
                (i, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await {
            Ok((i, Ok(_))) => winners.push(i),
            Ok((_, Err(Error::AlreadyExists))) => {}
            Ok((i, Err(e))) => panic!("writer {i} failed with {e}, not AlreadyExists"),
            Err(e) => panic!("a writer's task failed: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{} of {writers} racing writers won",
        winners.len()
    );
    match expect_ok("the get after the race", store.get(&arid, wait).await) {
        Some(got) => assert_eq!(text_of(&got), format!("writer {}", winners[0])),
        None => panic!("the winner's value is not there"),
    }
}

/// A value of exactly [`KvStore::max_value_size`] bytes is stored; one byte more is
/// [`Error::TooLarge`] naming both sizes, and nothing is written.
pub async fn size_limit_is_exact(store: &dyn KvStore, wait: Duration) {
    let limit = store.max_value_size();
    let fits = envelope_of_size(limit);
    let arid = ARID::new();
    expect_ok(
        "the put of a value at the limit",
        store.put(&arid, &fits, None).await,
    );
    match expect_ok(
        "the get of a value at the limit",
        store.get(&arid, wait).await,
    ) {
        Some(got) => assert_same_envelope(&got, &fits),
        None => panic!("a value at the limit was not stored"),
    }
    let refused = one_byte_over_the_limit_is_refused(store).await;
    assert!(
        !expect_ok("exists after a refused put", store.exists(&refused).await),
        "a refused put wrote something"
    );
}

/// One byte over [`KvStore::max_value_size`] is [`Error::TooLarge`] naming both sizes.
/// Needs no working backend when the size is checked before any I/O, as it should be.
/// Returns the ARID of the refused put.
pub async fn one_byte_over_the_limit_is_refused(store: &dyn KvStore) -> ARID {
    let limit = store.max_value_size();
    let arid = ARID::new();
    match store.put(&arid, &envelope_of_size(limit + 1), None).await {
        Err(Error::TooLarge { size, limit: l }) if size == limit + 1 && l == limit => {}
        other => panic!("one byte over the {limit}-byte limit gave {other:?}"),
    }
    arid
}

/// Checks of a [`HybridStore`](crate::hybrid::HybridStore) over any pair of stores.
pub mod hybrid {
    use std::time::Duration;

    use super::{assert_same_envelope, envelope_of_size, expect_ok};
    use crate::hybrid::{HybridStore, Reference, parse_reference, reference_envelope};
    use crate::{ARID, KvStore};

    /// A value of `size` bytes (at most the inline limit) is stored in the small store as it
    /// is, nothing goes to the large store, and a get returns it.
    pub async fn small_value_stays_in_the_small_store<S: KvStore, L: KvStore>(
        store: &HybridStore<S, L>,
        size: usize,
        wait: Duration,
    ) {
        let arid = ARID::new();
        let value = envelope_of_size(size);
        expect_ok(
            "the put of a small value",
            store.put(&arid, &value, None).await,
        );
        assert!(
            !expect_ok(
                "exists in the large store",
                store.large().exists(&arid).await
            ),
            "a small value reached the large store"
        );
        match expect_ok(
            "the small store's get",
            store.small().get(&arid, Duration::ZERO).await,
        ) {
            Some(direct) => assert_same_envelope(&direct, &value),
            None => panic!("the small store does not hold the small value"),
        }
        match expect_ok("the get of a small value", store.get(&arid, wait).await) {
            Some(got) => assert_same_envelope(&got, &value),
            None => panic!("the small value was not found"),
        }
    }

    /// A value of `size` bytes (over the inline limit) goes to the large store; the small
    /// store holds a reference naming its size; a get follows it. Returns the reference.
    pub async fn large_value_goes_behind_a_reference<S: KvStore, L: KvStore>(
        store: &HybridStore<S, L>,
        size: usize,
        wait: Duration,
    ) -> Reference {
        let arid = ARID::new();
        let value = envelope_of_size(size);
        expect_ok(
            "the put of a large value",
            store.put(&arid, &value, None).await,
        );
        let Some(in_small) = expect_ok(
            "the small store's get",
            store.small().get(&arid, Duration::ZERO).await,
        ) else {
            panic!("the small store holds nothing for a large value");
        };
        let reference = match parse_reference(&in_small) {
            Ok(Some(reference)) => reference,
            other => panic!("the small store holds no reference for a large value: {other:?}"),
        };
        assert_eq!(
            reference.size, size as u64,
            "the reference names another size"
        );
        assert!(
            expect_ok(
                "exists in the large store",
                store.large().exists(&reference.arid).await
            ),
            "the referenced value is not in the large store"
        );
        match expect_ok("the get of a large value", store.get(&arid, wait).await) {
            Some(got) => assert_same_envelope(&got, &value),
            None => panic!("the large value was not found"),
        }
        reference
    }

    /// A reference written by hand (as hubert writes them) to a value `target_writer` put
    /// straight into large storage is followed by a get.
    pub async fn hand_written_reference_is_followed<S: KvStore, L: KvStore>(
        store: &HybridStore<S, L>,
        target_writer: &dyn KvStore,
        size: usize,
        wait: Duration,
    ) {
        let (arid, target) = (ARID::new(), ARID::new());
        let value = envelope_of_size(size);
        expect_ok(
            "the put of the target",
            target_writer.put(&target, &value, None).await,
        );
        let reference = reference_envelope(&target, size as u64);
        expect_ok(
            "the put of the reference",
            store.small().put(&arid, &reference, None).await,
        );
        match expect_ok(
            "the get through the reference",
            store.get(&arid, wait).await,
        ) {
            Some(got) => assert_same_envelope(&got, &value),
            None => panic!("the reference was not followed"),
        }
    }

    /// A reference to an ARID nobody wrote is an error (never `None`, never a hang past
    /// `wait`). Returns the error's text for backend-specific checks.
    pub async fn reference_to_a_missing_value_is_an_error<S: KvStore, L: KvStore>(
        store: &HybridStore<S, L>,
        wait: Duration,
    ) -> String {
        let arid = ARID::new();
        let reference = reference_envelope(&ARID::new(), 5000);
        expect_ok(
            "the put of the reference",
            store.small().put(&arid, &reference, None).await,
        );
        match store.get(&arid, wait).await {
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("nothing at the referenced ARID"), "{text}");
                text
            }
            Ok(got) => panic!("a reference to nothing gave {got:?}"),
        }
    }
}
