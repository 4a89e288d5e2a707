"""Host checks of MCUboot images (built and signed by imgtool through ``mcuboot_images``)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from device_drivers.errors import InputError
from device_drivers.mcuboot_image import check_image, version_tuple


def test_a_valid_image_reports_version_hash_and_layout(mcuboot_images) -> None:
    body = bytes(range(256)) * 20
    data = mcuboot_images.build(body, "2.3.4+5")
    check = check_image(data, "app.signed.bin")
    assert check.version == "2.3.4+5" and check.version_tuple == (2, 3, 4, 5)
    assert check.hash == hashlib.sha256(data[:0x200 + len(body)]).hexdigest()
    assert (check.header_size, check.image_size, check.hash_algo) == (0x200, len(body), "sha256")
    assert check.tlvs == ["SHA256"] and not check.signed and check.signature == "none"


def test_a_signed_image_verifies_with_its_key_and_its_public_key(mcuboot_images) -> None:
    key = mcuboot_images.key()
    data = mcuboot_images.build(key=key, security_counter=7)
    assert check_image(data, "a.bin").signature == "not checked"
    good = check_image(data, "a.bin", key=key)
    assert good.signed and good.signature == "verified" and "ECDSASIG" in good.tlvs
    assert good.protected_tlv_size > 0
    assert check_image(data, "a.bin", key=mcuboot_images.public_key()).signature == "verified"


def test_a_wrong_key_is_refused(mcuboot_images) -> None:
    data = mcuboot_images.build(key=mcuboot_images.key("real"))
    with pytest.raises(InputError, match=r"signature does not match other\.pem"):
        check_image(data, "a.bin", key=mcuboot_images.key("other"))


def test_an_unsigned_image_with_a_key_is_refused(mcuboot_images) -> None:
    with pytest.raises(InputError, match="is not signed"):
        check_image(mcuboot_images.build(), "a.bin", key=mcuboot_images.key())


def test_a_tampered_body_fails_the_hash(mcuboot_images) -> None:
    data = bytearray(mcuboot_images.build())
    data[0x200 + 100] ^= 0x01
    with pytest.raises(InputError, match="fails its SHA256 check") as err:
        check_image(bytes(data), "app.bin")
    assert "\n" not in str(err.value)


def test_a_tampered_protected_tlv_fails_the_hash(mcuboot_images) -> None:
    body = bytes(2048)
    data = bytearray(mcuboot_images.build(body, security_counter=3))
    prot = 0x200 + len(body)
    assert struct.unpack_from("<H", data, prot)[0] == 0x6908
    data[prot + 8] ^= 0xFF  # the security counter's value
    with pytest.raises(InputError, match="header, image and protected TLVs"):
        check_image(bytes(data), "app.bin")


def test_a_tampered_sha_tlv_fails_the_hash(mcuboot_images) -> None:
    data = bytearray(mcuboot_images.build())
    data[-1] ^= 0x80  # last byte of the SHA256 TLV value
    with pytest.raises(InputError, match="fails its SHA256 check"):
        check_image(bytes(data), "app.bin")


def test_a_broken_tlv_area_is_explained(mcuboot_images) -> None:
    body = bytes(1000)
    data = bytearray(mcuboot_images.build(body))
    struct.pack_into("<H", data, 0x200 + len(body), 0x1234)
    with pytest.raises(InputError, match="no valid TLV area: magic 0x1234"):
        check_image(bytes(data), "app.bin")
    data = bytearray(mcuboot_images.build(body))
    struct.pack_into("<H", data, 0x200 + len(body) + 6, 200)  # SHA TLV length
    with pytest.raises(InputError, match="corrupt: TLV SHA256"):
        check_image(bytes(data), "app.bin")


@pytest.mark.parametrize("cut", [1, 30, 40, 3000])
def test_a_truncated_image_is_refused(mcuboot_images, cut: int) -> None:
    data = mcuboot_images.build(bytes(range(256)) * 10)
    with pytest.raises(InputError, match=r"truncated|too short|no valid TLV") as err:
        check_image(data[:-cut], "app.bin")
    assert err.value.hint


def test_not_an_image() -> None:
    with pytest.raises(InputError, match="not an MCUboot image"):
        check_image(b"\x7fELF" + bytes(100), "zephyr.elf")
    with pytest.raises(InputError, match="too short"):
        check_image(b"\x3d\xb8\xf3\x96", "x.bin")


def test_a_missing_or_bad_key_file_is_bad_input(mcuboot_images, tmp_path) -> None:
    data = mcuboot_images.build(key=mcuboot_images.key())
    with pytest.raises(InputError, match="does not exist"):
        check_image(data, "a.bin", key=tmp_path / "none.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    with pytest.raises(InputError, match="not a key imgtool can use"):
        check_image(data, "a.bin", key=junk)


def test_version_tuple() -> None:
    assert version_tuple("1.2.3") < version_tuple("1.2.3+1") < version_tuple("1.10.0")
