"""What an attacker types: text at and around every bound the registry and git have, and the
characters that break lines, paths, markup and author lines. Shared by the adversarial tests."""

from __future__ import annotations

from hypothesis import strategies as st

# Bounds of ours (62, 64, 128, 200, 250, 512), of filesystems (255/256 bytes), and of libgit2's tree
# entries (65,535 bytes), each on both sides, and well beyond.
SIZES = (1, 61, 62, 63, 64, 65, 127, 128, 129, 150, 151, 199, 200, 201, 249, 250, 251, 254, 255, 256, 512, 513,
         4097, 65535, 65536, 100_000)
# A name's characters: ASCII, two-byte and three-byte UTF-8 (so a bound in characters is met before
# or after one in bytes).
FILL = ("a", "7", "a-", "é", "名")
NASTY = ("\x00", "\n", "\r\n", "\t", "\x1b[31m", "\x7f", "\x85", "\u2028", "\ud800", "<", ">", "/", "\\", "..", ".git",
         "<img src=x onerror=alert(1)>", "\u202e", " ", "%00", "'\"", "${x}", "Key: value", "\n\nFake: trailer")
HUGE_NUMBER = "1" + "0" * 5000


def sized(fill: tuple[str, ...] = FILL) -> st.SearchStrategy[str]:
    """Text of exactly one of SIZES characters, of one repeated piece."""
    return st.builds(lambda piece, n: (piece * n)[:n], st.sampled_from(fill), st.sampled_from(SIZES))


def spiked() -> st.SearchStrategy[str]:
    """A plausible value with something nasty inside, before or after it."""
    return st.builds(lambda a, bad, b: a + bad + b, st.sampled_from(("", "acme", "Dev Eloper", "1.0")),
                     st.sampled_from(NASTY), st.sampled_from(("", "x", "-utils", ".post1")))


def texts() -> st.SearchStrategy[str]:
    """Anything a user might type into a field."""
    return st.one_of(sized(), spiked(), st.text(max_size=30), st.sampled_from(NASTY))


def shaped(first: str, fill: tuple[str, ...], bound: int, suffix: str = "") -> st.SearchStrategy[str]:
    """Well-formed values of one of SIZES characters, or of ``bound`` or one either side of it (a
    random stamp after ``first`` keeps them apart: most are new to the registry, not taken)."""
    sizes = st.sampled_from(SIZES) | st.sampled_from((8, bound - 1, bound, bound + 1))
    return st.builds(lambda stamp, piece, n: ((first + f"{stamp:x}" + piece * n)[:n] + suffix),
                     st.integers(0, 2**40), st.sampled_from(fill), sizes)


def slugs() -> st.SearchStrategy[str]:
    well_formed = shaped("w", ("a", "a-", "7_"), 62)
    return st.one_of(well_formed, well_formed, texts())


def keys() -> st.SearchStrategy[str]:
    well_formed = shaped("K", ("A", "B_"), 64).map(str.upper)
    return st.one_of(well_formed, well_formed, texts())


def shown_names() -> st.SearchStrategy[str | None]:
    """What a person's, a workspace's or a project's name may be: none, text around the bound,
    markup and other characters a page must escape, and anything else."""
    fine = st.sampled_from(("Dev Eloper", "<img src=x onerror=alert(1)>", "名前", "O'Brien & \"Co\"", "a" * 250,
                            "é" * 250))
    return st.one_of(st.none(), fine, texts())


def names() -> st.SearchStrategy[str]:
    """Package names: well-formed ones of every length around the bounds, and anything else."""
    return st.one_of(shaped("p", ("ab-c", "x.y_", "Q"), 199, "0"), texts())


def versions() -> st.SearchStrategy[str]:
    """Versions: plain and PEP 440's odd corners, huge numbers, long local labels, and junk."""
    big = st.builds(lambda n: "1." + "9" * n, st.sampled_from(SIZES))
    local = st.builds(lambda n: "1.0+" + ("abc." * n)[:n].strip("."), st.sampled_from(SIZES))
    plain = st.sampled_from(("1.0", "2.0rc1", "1.0.post1", "1!2.0", "0.0.0.0.1", "1.0.dev0+g1234.d20240101",
                             HUGE_NUMBER))
    return st.one_of(plain, big, local, texts())


def _domain(n: int) -> str:
    return (("d" * 62 + ".") * (n // 63 + 1))[:max(n - 1, 0)] + "z"


def emails() -> st.SearchStrategy[str]:
    """Addresses with the local part and the domain each around their bounds, and anything else."""
    local = st.builds(lambda name: f"{name}@acme.test", shaped("u", ("a", "a.b", "+"), 64))
    local = st.one_of(local, local)
    sizes = st.sampled_from(SIZES) | st.sampled_from((236, 237, 238))  # (250 in all, and either side)
    domain = st.builds(lambda stamp, n: f"d{stamp:010x}@{_domain(n)}", st.integers(0, 2**40), sizes)
    return st.one_of(local, domain, st.builds(lambda t: f"x{t}@acme.test", texts()), texts())
