"""How much host memory a buffer really holds: its resident pages (Linux).

``resident_bytes(buffer)`` counts the pages of a writable buffer (the
reference heap's mappings) that are backed by memory, from
/proc/self/pagemap (a page counts if it is swapped, bit 62, or present and
exclusively mapped, bits 63 and 56: a never-written page that was read maps the
shared zero page, which is present but costs nothing). Unlike /proc/self/smaps
it does not depend on how the kernel merged neighbouring mappings, and unlike
tracemalloc it sees memory that does not come from Python's allocators.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import sys

PAGE = mmap.PAGESIZE
HAVE_PAGEMAP = sys.platform.startswith("linux")


def address_of(buffer) -> int:
    view = (ctypes.c_char * 1).from_buffer(buffer)
    try:
        return ctypes.addressof(view)
    finally:
        del view


def resident_bytes(buffer) -> int:
    """Bytes of the pages spanned by ``buffer`` that hold memory of their own."""
    start = address_of(buffer) // PAGE
    end = (address_of(buffer) + len(buffer) - 1) // PAGE + 1
    with open("/proc/self/pagemap", "rb") as pagemap:
        pagemap.seek(start * 8)
        entries = pagemap.read((end - start) * 8)
    return PAGE * sum(1 for (entry,) in struct.iter_unpack("<Q", entries)
                      if entry >> 62 & 1 or entry >> 63 & 1 and entry >> 56 & 1)
