import io
import tarfile
import zipfile

import pytest

from registry import dists as distmod
from registry.errors import Invalid

META = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: s\nRequires-Python: >=3.9\n\nbody\n"


def wheel(path, filename, name="acme-utils", version="1.0", dist_info=None, metadata=None, skip=(), extra=()):
    dist_info = dist_info or f"{filename.split('-')[0]}-{filename.split('-')[1]}.dist-info"
    with zipfile.ZipFile(path / filename, "w") as zf:
        zf.writestr("acme_utils/__init__.py", "")
        for member in extra:
            zf.writestr(member, "")
        if "METADATA" not in skip:
            zf.writestr(f"{dist_info}/METADATA",
                        metadata if metadata is not None else META.format(name=name, version=version))
        if "WHEEL" not in skip:
            zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if "RECORD" not in skip:
            zf.writestr(f"{dist_info}/RECORD", "")
    return path / filename


def sdist(path, filename, top, name="acme-utils", version="1.0", pkg_info=True, metadata=None):
    with tarfile.open(path / filename, "w:gz") as tf:
        def add(member, data):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add(f"{top}/pyproject.toml", b"[project]\n")
        if pkg_info:
            add(f"{top}/PKG-INFO", (metadata or META.format(name=name, version=version)).encode())
    return path / filename


def zip_sdist(path, filename, top, name="acme-utils", version="1.0", members=None):
    with zipfile.ZipFile(path / filename, "w") as zf:
        for member, data in (members or {f"{top}/setup.py": "",
                                         f"{top}/PKG-INFO": META.format(name=name, version=version)}).items():
            zf.writestr(member, data)
    return path / filename


def metadata(version="2.1", name="acme-utils", fields=""):
    return f"Metadata-Version: {version}\nName: {name}\nVersion: 1.0\n{fields}"


def inspect_metadata(tmp_path, text):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", metadata=text)
    return distmod.inspect(path, path.name)


def test_real_wheel_and_sdist(dists):
    sdist_path, wheel_path = dists[("Acme.Utils", "2.0.0rc1")]
    info = distmod.inspect(wheel_path, wheel_path.name)
    assert (info.name, info.version, info.packagetype,
            info.python_version) == ("Acme.Utils", "2.0.0rc1", "bdist_wheel", "py3")
    assert info.requires_python == ">=3.8" and info.metadata.startswith(b"Metadata-Version")
    assert info.canonical_name == "acme-utils" and info.summary == "Test package Acme.Utils"
    assert info.warnings == ()  # a current build tool's file is unremarkable
    info = distmod.inspect(sdist_path, sdist_path.name)
    assert (info.packagetype, info.python_version, info.version) == ("sdist", "source", "2.0.0rc1")
    assert info.warnings == ()


@pytest.mark.parametrize("filename", ["../evil.whl", "a/b-1.0-py3-none-any.whl", "a\\b.whl", "x\x00-1.0.tar.gz",
                                      ".hidden-1.0.tar.gz", "", "x" * 300 + ".whl"])
def test_path_tricks_in_filenames(filename):
    with pytest.raises(Invalid, match="Invalid filename"):
        distmod.check_filename(filename)


@pytest.mark.parametrize("filename", ["acme-1.0.exe", "acme-1.0.egg", "acme.txt", "acme-1.0.tar.bz2", "acme-1.0.tgz"])
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


def test_bad_wheel_filename(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-any.whl")
    with pytest.raises(Invalid, match="Invalid wheel filename"):
        distmod.inspect(path, path.name)


def test_invalid_metadata(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl",
                 metadata="Metadata-Version: 9.9\nName: acme-utils\nVersion: 1.0\n")
    with pytest.raises(Invalid, match="Invalid core metadata.*Metadata-Version 9.9 is a major version"):
        distmod.inspect(path, path.name)


def test_oversized_metadata_is_refused_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(distmod, "METADATA_LIMIT", 1000)
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl",
                 metadata=META.format(name="acme-utils", version="1.0") + "x" * 5000)
    with pytest.raises(Invalid, match="larger than 1000 bytes"):
        distmod.inspect(path, path.name)


def test_sdist_without_pkg_info(tmp_path):
    path = sdist(tmp_path, "acme_utils-1.0.tar.gz", "acme_utils-1.0", pkg_info=False)
    with pytest.raises(Invalid, match="PKG-INFO is missing"):
        distmod.inspect(path, path.name)


def test_sdist_that_is_not_gzip(tmp_path):
    (tmp_path / "acme_utils-1.0.tar.gz").write_bytes(b"plain text")
    with pytest.raises(Invalid, match="not a readable .tar.gz"):
        distmod.inspect(tmp_path / "acme_utils-1.0.tar.gz", "acme_utils-1.0.tar.gz")


def test_sdist_scan_is_bounded(tmp_path):
    with tarfile.open(tmp_path / "acme_utils-1.0.tar.gz", "w:gz") as tf:  # (tests/adversarial/ has the class)
        big = tarfile.TarInfo("acme_utils-1.0/big.bin")
        big.size = 10 * 2**20
        tf.addfile(big, io.BytesIO(bytes(big.size)))
    with pytest.raises(Invalid, match="it decompresses to more than 4194304 bytes.*over its inspection budget"):
        distmod.inspect(tmp_path / "acme_utils-1.0.tar.gz", "acme_utils-1.0.tar.gz")


# --- leniency: accepted with a warning, as installers accept it ---------------------------------

# One field per Metadata-Version that introduced it, so each version declares only fields it has.
FIELDS_OF = {
    "1.0": "Summary: s\n", "1.1": "Classifier: A :: B\n", "1.2": "Requires-Python: >=3.8\n",
    "2.1": "Provides-Extra: test\n", "2.2": "Dynamic: Summary\n", "2.3": "Summary: s\n",
    "2.4": "License-Expression: MIT\n", "2.5": "Import-Name: acme_utils\n",
}


@pytest.mark.parametrize("version", list(FIELDS_OF))
def test_every_metadata_version_is_accepted(tmp_path, version):
    info = inspect_metadata(tmp_path, metadata(version, fields=FIELDS_OF[version]))
    assert (info.metadata_version, info.warnings) == (version, ())


def test_license_file_under_metadata_2_1_is_a_warning(tmp_path):
    info = inspect_metadata(tmp_path, metadata("2.1", fields="License: MIT\nLicense-File: LICENSE\n"))
    assert info.warnings == ("License-File is a Metadata-Version 2.4 field; this file declares 2.1.",)


def test_every_field_newer_than_the_declared_version_is_named(tmp_path):
    info = inspect_metadata(tmp_path, metadata("1.0", fields="Requires-Python: >=3.8\nDynamic: Summary\n"))
    assert set(info.warnings) == {"Requires-Python is a Metadata-Version 1.2 field; this file declares 1.0.",
                                  "Dynamic is a Metadata-Version 2.2 field; this file declares 1.0."}
    assert info.requires_python == ">=3.8"  # still used: pip and uv read it whatever the version says


def test_a_field_newer_than_the_declared_version_is_still_validated(tmp_path):
    with pytest.raises(Invalid, match="parent directory indicators are not allowed.*a path inside the distribution"):
        inspect_metadata(tmp_path, metadata("2.1", fields="License-File: ../../etc/passwd\n"))
    with pytest.raises(Invalid, match="'>=3.x' is invalid for 'requires-python'"):
        inspect_metadata(tmp_path, metadata("1.0", fields="Requires-Python: >=3.x\n"))


def test_metadata_version_2_0_was_never_a_standard(tmp_path):
    info = inspect_metadata(tmp_path,
                            metadata("2.0", fields="Provides-Extra: test\nDescription-Content-Type: text/markdown\n"))
    assert info.metadata_version == "2.0"
    assert info.warnings == ("Metadata-Version 2.0 was never standardised (PEP 426 was withdrawn); the file's fields "
                             "were read as Metadata-Version 2.1 fields.",)


def test_an_unknown_newer_minor_version_is_read_as_the_newest_known(tmp_path):
    info = inspect_metadata(tmp_path, metadata("2.99", fields="Import-Name: acme_utils\nX-Future-Field: 1\n"))
    newest = distmod.coremetadata.NEWEST
    assert info.metadata_version == "2.99"
    assert info.warnings == (f"Metadata-Version 2.99 is newer than this registry knows ({newest}); the file's fields "
                             f"were read as Metadata-Version {newest} fields.",
                             "'x-future-field' is not a core metadata field; installers ignore it.")


@pytest.mark.parametrize("version, message", [
    ("3.0", "Metadata-Version 3.0 is a major version this registry doesn't know.*writes Metadata-Version 2.x"),
    ("1.3", "'1.3' is not a metadata version"),
    ("2.1.0", "'2.1.0' is not a metadata version"),
    ("latest", "'latest' is not a metadata version"),
])
def test_metadata_versions_that_are_refused(tmp_path, version, message):
    with pytest.raises(Invalid, match=message):
        inspect_metadata(tmp_path, metadata(version))


def test_missing_required_fields_are_refused(tmp_path):
    with pytest.raises(Invalid, match="Metadata-Version is missing"):
        inspect_metadata(tmp_path, "Name: acme-utils\nVersion: 1.0\n")
    with pytest.raises(Invalid, match="Name is missing"):
        inspect_metadata(tmp_path, "Metadata-Version: 2.1\nVersion: 1.0\n")


@pytest.mark.parametrize("fields, warning", [
    ("Description-Content-Type: text/foo\n", "'description-content-type' must be one of"),
    ("Provides-Extra: not an extra!\n", "'not an extra!' is invalid for 'provides-extra'; installers ignore it."),
    ("X-Built-By: hand\n", "'x-built-by' is not a core metadata field; installers ignore it."),
    ("Summary: one\nSummary: two\n", "Summary could not be read (given more than once"),
    ("Metadata-Version-Extra: 1\n", "'metadata-version-extra' is not a core metadata field"),
])
def test_harmless_invalid_fields_are_warnings(tmp_path, fields, warning):
    info = inspect_metadata(tmp_path, metadata("2.1", fields=fields))
    assert len(info.warnings) == 1 and info.warnings[0].startswith(warning), info.warnings


def test_a_multi_line_summary_is_cut_to_its_first_line(tmp_path):
    info = inspect_metadata(tmp_path, metadata("2.1", fields="Summary: first\n second\n"))
    assert info.summary == "first" and "'summary' must be a single line; installers ignore it." in info.warnings


@pytest.mark.parametrize("fields, message", [
    ("Requires-Python: 3.6\n",
     "'3.6' is invalid for 'requires-python': pip ignores an invalid Requires-Python while uv"),
    ("Requires-Dist: not a requirement!\n", "is invalid for 'requires-dist': pip and uv refuse to install"),
])
def test_invalid_fields_installers_need_are_refused(tmp_path, fields, message):
    with pytest.raises(Invalid, match=message):
        inspect_metadata(tmp_path, metadata("2.1", fields=fields))


def test_invalid_or_ambiguous_name_and_version_are_refused(tmp_path):
    with pytest.raises(Invalid, match="is invalid for 'name'"):
        inspect_metadata(tmp_path, metadata(name="acme utils!"))
    with pytest.raises(Invalid, match="'1.0-final-release' is invalid for 'version': pip and uv install only PEP 440"):
        inspect_metadata(tmp_path, "Metadata-Version: 2.1\nName: acme-utils\nVersion: 1.0-final-release\n")
    with pytest.raises(Invalid, match="Name is given more than once or isn't valid UTF-8"):
        inspect_metadata(tmp_path, metadata() + "Name: other\n")


@pytest.mark.parametrize("filename, name, version", [
    ("zope.interface-6.1.tar.gz", "zope.interface", "6.1"),
    ("Django-4.2.tar.gz", "Django", "4.2"),
    ("ruamel.yaml.clib-0.2.8.tar.gz", "ruamel.yaml.clib", "0.2.8"),
    ("backports.tarfile-1.2.0.tar.gz", "backports.tarfile", "1.2.0"),
    ("Foo_Bar-1.0.tar.gz", "Foo_Bar", "1.0"),
])
def test_legacy_sdist_names_are_accepted_as_uploaded(tmp_path, filename, name, version):
    top = filename.removesuffix(".tar.gz")
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense-File: LICENSE\n"
    path = sdist(tmp_path, filename, top, metadata=meta)
    info = distmod.inspect(path, path.name)
    expected = f"{name.lower().replace('.', '_')}-{version}.tar.gz"
    assert (info.filename, info.name, info.version) == (filename, name, version)
    assert info.warnings == (
        "License-File is a Metadata-Version 2.4 field; this file declares 2.1.",
        f"Source distribution filenames are {expected!r} since PEP 625 (normalised name, .tar.gz); this one is "
        f"{filename!r}, a legacy name as older tools wrote. pip and uv install it, and it is served under the "
        "name it was uploaded with.",
    )


def test_a_zip_sdist_is_accepted(tmp_path):
    path = zip_sdist(tmp_path, "Acme.Utils-1.0.zip", "Acme.Utils-1.0", name="Acme.Utils")
    info = distmod.inspect(path, path.name)
    assert (info.filename, info.packagetype, info.python_version) == ("Acme.Utils-1.0.zip", "sdist", "source")
    assert info.metadata.startswith(b"Metadata-Version: 2.1\nName: Acme.Utils")
    assert len(info.warnings) == 1
    assert "this one is 'Acme.Utils-1.0.zip', a .zip as older tools wrote" in info.warnings[0]


def test_pkg_info_in_another_top_level_directory_is_a_warning(tmp_path):
    path = sdist(tmp_path, "acme_utils-1.0.tar.gz", "acme-utils-1.0")
    info = distmod.inspect(path, path.name)
    assert info.warnings == ("PKG-INFO is in 'acme-utils-1.0/', not in 'acme_utils-1.0/' as the filename implies.",)


def test_zip_sdists_are_checked_like_the_others(tmp_path):
    (tmp_path / "acme-1.0.zip").write_bytes(b"PK not really")
    with pytest.raises(Invalid, match="not a zip archive"):
        distmod.inspect(tmp_path / "acme-1.0.zip", "acme-1.0.zip")
    path = zip_sdist(tmp_path, "acme-utils-1.0.zip", "acme-utils-1.0", members={"acme-utils-1.0/setup.py": ""})
    with pytest.raises(Invalid, match="acme-utils-1.0/PKG-INFO is missing"):
        distmod.inspect(path, path.name)
    path = zip_sdist(tmp_path, "acme-utils-1.1.zip", "acme-utils-1.1")
    with pytest.raises(Invalid, match="Version in filename should be '1.0' not '1.1'"):
        distmod.inspect(path, path.name)
    path = zip_sdist(tmp_path, "other-1.0.zip", "other-1.0")
    with pytest.raises(Invalid, match="names project 'other' but its metadata says 'acme-utils'"):
        distmod.inspect(path, path.name)


@pytest.mark.parametrize("member", ["../evil.py", "/etc/cron.d/evil", "acme_utils/../../evil.py", "..\\evil.py",
                                    "C:/evil.py"])
def test_archive_members_outside_the_archive_are_refused(tmp_path, member):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", extra=[member])
    with pytest.raises(Invalid, match="points outside the archive"):
        distmod.inspect(path, path.name)
    path = zip_sdist(tmp_path, "acme-utils-1.0.zip", "acme-utils-1.0", members={
        member: "", "acme-utils-1.0/PKG-INFO": META.format(name="acme-utils", version="1.0")})
    with pytest.raises(Invalid, match="points outside the archive"):
        distmod.inspect(path, path.name)


def test_legacy_sdist_names_must_still_name_the_project_and_version(tmp_path):
    path = sdist(tmp_path, "Django-4.2.tar.gz", "Django-4.2", name="Flask", version="4.2")
    with pytest.raises(Invalid, match="names project 'django' but its metadata says 'Flask'"):
        distmod.inspect(path, path.name)
    path = sdist(tmp_path, "Django-4.2.tar.gz", "Django-4.2", name="Django", version="4.2.1")
    with pytest.raises(Invalid, match="Version in filename should be '4.2.1' not '4.2'"):
        distmod.inspect(path, path.name)


@pytest.mark.parametrize("filename, name", [
    ("Foo_Bar-1.0-py3-none-any.whl", "Foo_Bar"),
    ("foo.bar-1.0-py3-none-any.whl", "foo.bar"),
    ("Foo.Bar-1.0-py2.py3-none-any.whl", "Foo.Bar"),
])
def test_non_normalised_wheel_names_are_accepted(tmp_path, filename, name):
    path = wheel(tmp_path, filename, name=name)
    info = distmod.inspect(path, path.name)
    assert (info.filename, info.name) == (filename, name)
    assert info.warnings == (f"Wheel filenames carry the normalised project name ('foo_bar', binary distribution "
                             f"format); this one has {filename.split('-')[0]!r}. pip and uv read either.",)


def test_an_abi3_wheel_name(tmp_path):
    filename = "acme_utils-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    info = distmod.inspect(wheel(tmp_path, filename), filename)
    assert (info.python_version, info.warnings) == ("cp38", ())


def test_the_dist_info_directory_is_found_as_pip_finds_it(tmp_path):
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", dist_info="Acme.Utils-1.0.dist-info")
    assert distmod.inspect(path, path.name).warnings == (
        "The wheel's metadata directory is 'Acme.Utils-1.0.dist-info', not acme_utils-1.0.dist-info as its "
        "filename implies.",)
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", dist_info="other-1.0.dist-info")
    with pytest.raises(Invalid, match="metadata directory 'other-1.0.dist-info' is not for project 'acme-utils'"):
        distmod.inspect(path, path.name)
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", extra=["acme_utils-0.9.dist-info/METADATA"])
    with pytest.raises(Invalid, match="exactly one top-level .dist-info directory \\(found acme_utils-0.9.dist-info, "
                                      "acme_utils-1.0.dist-info\\)"):
        distmod.inspect(path, path.name)


def test_a_non_normalised_version_in_a_wheel_name(tmp_path):
    path = wheel(tmp_path, "acme_utils-01.0-py3-none-any.whl", dist_info="acme_utils-1.0.dist-info")
    assert distmod.inspect(path, path.name).warnings == (
        "The filename's version '01.0' is not in normal form ('1.0', PEP 440).",
        "The wheel's metadata directory is 'acme_utils-1.0.dist-info', not acme_utils-01.0.dist-info as its "
        "filename implies.",
    )


def test_metadata_2_4_license_files_belong_in_the_licenses_directory(tmp_path):
    text = metadata("2.4", fields="License-Expression: MIT\nLicense-File: LICENSE\nLicense-File: NOTICE\n")
    path = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", metadata=text,
                 extra=["acme_utils-1.0.dist-info/licenses/LICENSE"])
    assert distmod.inspect(path, path.name).warnings == (
        "License-File NOTICE is not in the wheel at acme_utils-1.0.dist-info/licenses/NOTICE (Metadata-Version 2.4).",)
