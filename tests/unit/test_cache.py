"""registry/cache.py's LRU bounded in bytes: which entries it keeps, checked against a plain model
over any sequence of puts, gets and pops, and its accounting under threads that race."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from registry import cache
from registry.web.repeats import Repeats

BOUND = 4_000
KEYS = st.sampled_from([f"k{i}" for i in range(12)])
OPS = st.lists(st.one_of(
    st.tuples(st.just("put"), KEYS, st.integers(0, 2 * BOUND)),
    st.tuples(st.just("get"), KEYS, st.just(0)),
    st.tuples(st.just("pop"), KEYS, st.just(0)),
), max_size=80)


def a_cache(bound: int = BOUND) -> cache.Cache:
    c = Repeats()._repeats  # (one of the registry's own: a made-up name would have no setting)
    c.resize(bound)
    return c


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_keeps_the_most_recently_used_that_fit(ops):
    """The model: a list, least recently used first; a put forgets the key's old entry, keeps the new
    one unless it alone exceeds the bound, then drops from the front until the sum fits. Every step
    lists what is kept (`sizes`), which must use none of it: a listing that touched each entry made
    the next put push out the one just used."""
    c, model = a_cache(), []  # model: [(key, value, accounted size)]
    for op, key, nbytes in ops:
        found = next((entry for entry in model if entry[0] == key), None)
        if op == "put":
            value = f"{key}:{nbytes}"
            c.put(key, value, nbytes)
            model = [entry for entry in model if entry[0] != key]
            size = nbytes + cache.key_size(key) + cache.ENTRY_OVERHEAD
            if size <= BOUND:
                model.append((key, value, size))
            while sum(entry[2] for entry in model) > BOUND:
                model.pop(0)
        elif op == "get":
            assert c.get(key) == (found[1] if found else None)
            if found:
                model = [entry for entry in model if entry[0] != key] + [found]
        else:
            c.pop(key)
            model = [entry for entry in model if entry[0] != key]
        assert sorted(c.sizes()) == sorted(model)  # (which are kept: the order they are listed in is no promise)
        assert c.used == sum(entry[2] for entry in model) <= c.bound == BOUND


def test_counts_hits_and_misses_and_a_default():
    c = a_cache()
    missing = object()
    assert c.get("a", missing) is missing
    c.put("a", None, 10)  # (a value may be None: the default tells it from a miss only by identity)
    assert c.get("a", missing) is None
    assert (c.hits, c.misses) == (1, 1)


def test_resize_and_clear_forget_everything():
    c = a_cache()
    c.put("a", 1, 10)
    c.resize(100_000)
    assert (len(c), c.used, c.bound) == (0, 0, 100_000)
    c.put("b", 2, 10)
    c.clear()
    assert (len(c), c.used, c.get("b")) == (0, 0, None)


def test_accounting_holds_while_threads_race():
    """Eight threads putting, getting and popping the same keys: what is accounted is the sum of what
    is kept, and never above the bound."""
    c = a_cache(20_000)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(4_000):
                key = (seed * 7 + i) % 40
                if i % 3 == 0:
                    c.put(key, i, (i * 37) % 3_000)
                elif i % 3 == 1:
                    c.get(key)
                else:
                    c.pop(key)
        except BaseException as exc:  # (reported below, not lost in the thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert c.used == sum(size for _, _, size in c.sizes()) <= c.bound
