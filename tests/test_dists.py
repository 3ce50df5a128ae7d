import io
import tarfile
import zipfile

import pytest

from registry import dists as distmod
from registry.errors import Invalid

META = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: s\nRequires-Python: >=3.9\n\nbody\n"


def wheel(path, filename, name="acme-utils", version="1.0", dist_info=None, metadata=None, skip=()):
    dist_info = dist_info or f"{filename.split('-')[0]}-{filename.split('-')[1]}.dist-info"
    with zipfile.ZipFile(path / filename, "w") as zf:
        zf.writestr("acme_utils/__init__.py", "")
        if "METADATA" not in skip:
            zf.writestr(f"{dist_info}/METADATA", metadata if metadata is not None else META.format(name=name, version=version))
        if "WHEEL" not in skip:
            zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if "RECORD" not in skip:
            zf.writestr(f"{dist_info}/RECORD", "")
    return path / filename


def sdist(path, filename, top, name="acme-utils", version="1.0", pkg_info=True):
    with tarfile.open(path / filename, "w:gz") as tf:
        def add(member, data):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add(f"{top}/pyproject.toml", b"[project]\n")
        if pkg_info:
            add(f"{top}/PKG-INFO", META.format(name=name, version=version).encode())
    return path / filename


def test_real_wheel_and_sdist(dists):
    sdist_path, wheel_path = dists[("Acme.Utils", "2.0.0rc1")]
    info = distmod.inspect(wheel_path, wheel_path.name)
    assert (info.name, info.version, info.packagetype, info.python_version) == ("Acme.Utils", "2.0.0rc1", "bdist_wheel", "py3")
    assert info.requires_python == ">=3.8" and info.metadata.startswith(b"Metadata-Version")
    assert info.canonical_name == "acme-utils" and info.summary == "Test package Acme.Utils"
    info = distmod.inspect(sdist_path, sdist_path.name)
    assert (info.packagetype, info.python_version, info.version) == ("sdist", "source", "2.0.0rc1")


@pytest.mark.parametrize("filename", ["../evil.whl", "a/b-1.0-py3-none-any.whl", "a\\b.whl", "x\x00-1.0.tar.gz",
                                      ".hidden-1.0.tar.gz", "", "x" * 300 + ".whl"])
def test_path_tricks_in_filenames(filename):
    with pytest.raises(Invalid, match="Invalid filename"):
        distmod.check_filename(filename)


@pytest.mark.parametrize("filename", ["acme-1.0.zip", "acme-1.0.exe", "acme-1.0.egg", "acme.txt", "acme-1.0.tar.bz2"])
def test_unsupported_file_types(filename):
    with pytest.raises(Invalid, match="extension"):
        distmod.check_filename(filename)


def test_not_a_zip(tmp_path):
    (tmp_path / "acme_utils-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(Invalid, match="not a zip archive"):
        distmod.inspect(tmp_path / "acme_utils-1.0-py3-none-any.whl", "acme_utils-1.0-py3-none-any.whl")


@pytest.mark.parametrize("missing", ["METADATA", "RECORD", "WHEEL"])
def test_wheel_without_required_dist_info_files(tmp_path, missing):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", skip=(missing,))
    with pytest.raises(Invalid, match=f"dist-info/{missing} is missing"):
        distmod.inspect(path, path.name)


def test_name_and_version_must_match_the_metadata(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", name="other-pkg")
    with pytest.raises(Invalid, match="metadata says 'other-pkg'"):
        distmod.inspect(path, path.name)
    path = wheel(tmp_path, "acme_utils-1.1-py3-none-any.whl", version="1.2")
    with pytest.raises(Invalid, match="Version in filename should be '1.2' not '1.1'"):
        distmod.inspect(path, path.name)


def test_wheel_filename_must_use_the_normalised_name(tmp_path):
    path = wheel(tmp_path, "Acme.Utils-1.0-py3-none-any.whl", name="Acme.Utils")
    with pytest.raises(Invalid, match="normalized project name 'acme_utils'"):
        distmod.inspect(path, path.name)


def test_bad_wheel_filename(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-any.whl")
    with pytest.raises(Invalid, match="Invalid wheel filename"):
        distmod.inspect(path, path.name)


def test_invalid_metadata(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", metadata="Metadata-Version: 9.9\nName: acme-utils\nVersion: 1.0\n")
    with pytest.raises(Invalid, match="Invalid core metadata"):
        distmod.inspect(path, path.name)


def test_oversized_metadata_is_refused_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(distmod, "METADATA_LIMIT", 1000)
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", metadata=META.format(name="acme-utils", version="1.0") + "x" * 5000)
    with pytest.raises(Invalid, match="larger than 1000 bytes"):
        distmod.inspect(path, path.name)


def test_sdist_must_follow_pep_625(tmp_path):
    path = sdist(tmp_path, "Acme.Utils-1.0.tar.gz", "Acme.Utils-1.0", name="Acme.Utils")
    with pytest.raises(Invalid, match="should be 'acme_utils-1.0.tar.gz'"):
        distmod.inspect(path, path.name)


def test_sdist_without_pkg_info(tmp_path):
    path = sdist(tmp_path, "acme_utils-1.0.tar.gz", "acme_utils-1.0", pkg_info=False)
    with pytest.raises(Invalid, match="PKG-INFO is missing"):
        distmod.inspect(path, path.name)


def test_sdist_that_is_not_gzip(tmp_path):
    (tmp_path / "acme_utils-1.0.tar.gz").write_bytes(b"plain text")
    with pytest.raises(Invalid, match="not a readable .tar.gz"):
        distmod.inspect(tmp_path / "acme_utils-1.0.tar.gz", "acme_utils-1.0.tar.gz")


def test_sdist_scan_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(distmod, "SDIST_SCAN_LIMIT", 4096)
    with tarfile.open(tmp_path / "acme_utils-1.0.tar.gz", "w:gz") as tf:
        big = tarfile.TarInfo("acme_utils-1.0/big.bin")
        big.size = 10 * 2**20
        tf.addfile(big, io.BytesIO(bytes(big.size)))
    with pytest.raises(Invalid, match="PKG-INFO not found within"):
        distmod.inspect(tmp_path / "acme_utils-1.0.tar.gz", "acme_utils-1.0.tar.gz")
