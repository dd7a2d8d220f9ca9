#!/usr/bin/env python3
"""Writes the hand-written seeds of each fuzz target into corpus/<target>/seed-*.

The targets decode their input with the `arbitrary` crate, so a seed is written the way
`arbitrary` reads: an enum is a little-endian u32 that picks its variant (variant i of n is the
smallest v with v * n >> 32 == i), a struct its fields in order, a bool a byte whose low bit
counts, integers and floats little-endian, and a Vec its elements each preceded by a byte 1 and
followed by a byte 0. The variant lists below follow the enums of src/sequence/ops.rs,
src/values.rs, src/params.rs and src/files.rs, in order; change them together.

Run from fuzz/: python3 seeds.py (it overwrites the seed-* files, and nothing else). See what a
seed does with LEASE_FUZZ_TRACE=1 (README.md).
"""

import math
import os
import struct

ENUMS = {
    "Step": ["Op", "Parallel"],
    "Op": [
        "StoreOpen", "StoreOpenMemory", "StoreFree", "OptionsInit", "LockNew", "TryAcquire",
        "Acquire", "AcquireAsync", "CancelAcquire", "CollectAsync", "SetLostCallback", "LockFree",
        "GuardCheck", "GuardGeneration", "GuardIsDirty", "GuardRelease", "DbOpen",
        "DbSetBusyTimeout", "DbExecute", "DbQuery", "DbBegin", "DbBeginChunked", "DbBeginFenced",
        "TxExecute", "TxQuery", "TxMaybeCommit", "TxCommit", "TxRollback", "DbFree", "StatusStr",
        "LastError", "Version", "Suspend", "Resume", "IsSuspended", "Shutdown", "Sleep",
    ],
    "Text": ["Null", "Known", "Bytes"],
    "Options": ["Null", "Given"],
    "Ms": ["Zero", "Short", "Default", "Day", "OverADay", "Max", "Any"],
    "OptionsSize": ["Buffer", "Null"],
    "AsyncContext": ["Null", "New", "Reuse"],
    "CancelContext": ["Null", "Record", "Unknown"],
    "ChunkMs": ["Zero", "Short", "Default", "Max"],
    "Sql": ["Null", "Known", "KnownWithTail", "Bytes"],
    "InDbRow": ["Nothing", "QuerySame", "ExecuteSame", "QueryOther"],
    "InTxRow": ["Nothing", "ExecuteSame", "MaybeCommitSame", "CommitSame", "RollbackSame", "QueryDb"],
    "PathArg": [
        "Null", "Database", "EndsAtNul", "Empty", "NotUtf8", "NotADatabase", "Directory",
        "MissingDirectory", "Memory",
    ],
    "Spelling": ["Plain", "DoubleSlash", "Dot", "Symlink"],
    "Param": ["Null", "Integer", "Real", "Text", "Blob", "LongText", "LongBlob", "NullData", "BadKind"],
    "Len": ["Zero", "Small", "Absurd", "Max"],
    "Via": ["DbQuery", "DbExecute", "TxQuery", "TxExecute"],
    "Shape": ["Echo", "Named", "Mismatch", "CastText", "Insert"],
    "Count": ["All", "Fewer", "Absurd"],
}

# src/sequence/ops.rs's SQL list, by the statements the seeds use.
SQL = {
    "create": 0, "insert": 1, "insert2": 2, "select": 6, "select3": 8, "many": 10, "two": 12,
    "empty": 14, "begin": 16, "commit": 18, "savepoint": 21, "release": 22, "journal_delete": 26,
    "vacuum": 28, "expire": 30, "steal": 31, "drop_lease": 34, "missing": 36,
}
# src/sequence/ops.rs's TEXTS: keys and labels.
SYNC, A, EMPTY, NOT_UTF8 = 0, 1, 3, 6
# Slot counts (src/sequence/handles.rs): a Ref equal to one is NULL.
NULL_STORE, NULL_LOCK, NULL_GUARD, NULL_DB, NULL_TX = 3, 4, 6, 3, 3


def variant(enum, name):
    names = ENUMS[enum]
    index, count = names.index(name), len(names)
    value = math.ceil(index * 2**32 / count)
    assert value * count >> 32 == index
    return struct.pack("<I", value)


def u8(value):
    return bytes([value])


def boolean(value):
    return u8(1 if value else 0)


def u32(value):
    return struct.pack("<I", value)


def i32(value):
    return struct.pack("<i", value)


def u64(value):
    return struct.pack("<Q", value)


def i64(value):
    return struct.pack("<q", value)


def f64(value):
    return struct.pack("<d", value)


def vec(items):
    return b"".join(b"\x01" + item for item in items) + b"\x00"


def raw(data):
    return vec([u8(byte) for byte in data])


def e(enum, name, *fields):
    return variant(enum, name) + b"".join(fields)


# ---- abi_sequence ------------------------------------------------------------------------------


def op(name, *fields):
    return e("Step", "Op") + e("Op", name, *fields)


def parallel(first, second):
    # Each list holds Ops without their Step tag.
    strip = len(variant("Step", "Op"))
    return e("Step", "Parallel", vec([o[strip:] for o in first]), vec([o[strip:] for o in second]))


def db_path(index, spelling="Plain"):
    return e("PathArg", "Database", u8(index), e("Spelling", spelling))


def store_open(slot, path=None, null_out=False):
    return op("StoreOpen", path or db_path(slot), boolean(null_out), u8(slot))


def db_open(slot, path=None, busy_ms=5, null_out=False):
    return op("DbOpen", path or db_path(slot), boolean(null_out), u8(slot), u8(busy_ms))


def known(name):
    return e("Text", "Known", u8(name))


def options(size=16, lease=None, renew=None, backoff=None, tail=b""):
    lease = lease or e("Ms", "Default")
    renew = renew or e("Ms", "Short", u8(20))
    backoff = backoff or e("Ms", "Short", u8(5))
    return e("Options", "Given", u8(size), lease, renew, backoff, raw(tail))


def lock_new(slot, store, key=SYNC, opts=None, label=A, null_out=False):
    return op("LockNew", u8(store), known(key), known(label), opts or e("Options", "Null"),
              boolean(null_out), u8(slot))


def sql(name, params=(), null_params=False, fewer=0, tail=None):
    text = e("Sql", "Known", u8(SQL[name])) if tail is None else e("Sql", "KnownWithTail", u8(SQL[name]), raw(tail))
    return text + vec(list(params)) + boolean(null_params) + u8(fewer)


def rows(stop_after=0, null_callback=False, stop_code=1):
    return boolean(null_callback) + u8(stop_after) + i32(stop_code)


def param(name, *fields):
    return e("Param", name, *fields)


def text(data):
    return param("Text", raw(data))


def integer(value):
    return param("Integer", i64(value))


def abi_sequence_seeds():
    lock_lifecycle = [
        store_open(0),
        lock_new(0, 0),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("GuardCheck", u8(0)),
        op("GuardGeneration", u8(0)),
        op("GuardIsDirty", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(1)),
        op("GuardIsDirty", u8(1)),
        op("Acquire", u8(0), u8(10), boolean(False), u8(2)),
        op("Shutdown"),
        op("GuardRelease", u8(0)),
        op("GuardRelease", u8(1)),
        op("GuardRelease", u8(2)),
        op("TryAcquire", u8(0), boolean(True), u8(0)),
        op("TryAcquire", u8(NULL_LOCK), boolean(False), u8(0)),
        op("GuardCheck", u8(NULL_GUARD)),
        op("GuardGeneration", u8(NULL_GUARD)),
        op("GuardRelease", u8(NULL_GUARD)),
        op("LockFree", u8(0)),
        op("StoreFree", u8(0)),
        op("Shutdown"),
    ]
    asynchronous = [
        store_open(0),
        lock_new(0, 0),
        lock_new(1, 0, key=A),
        op("AcquireAsync", u8(0), u8(20), boolean(False), e("AsyncContext", "New", boolean(True))),
        op("AcquireAsync", u8(0), u8(20), boolean(False), e("AsyncContext", "Reuse", u8(0))),
        op("AcquireAsync", u8(1), u8(0), boolean(False), e("AsyncContext", "Null")),
        op("AcquireAsync", u8(1), u8(5), boolean(True), e("AsyncContext", "New", boolean(False))),
        op("CancelAcquire", u8(0), e("CancelContext", "Record", u8(0))),
        op("CancelAcquire", u8(1), e("CancelContext", "Null")),
        op("CancelAcquire", u8(1), e("CancelContext", "Unknown")),
        op("CancelAcquire", u8(NULL_LOCK), e("CancelContext", "Null")),
        op("Sleep", u8(10)),
        op("CollectAsync"),
        op("LockFree", u8(0)),
        op("AcquireAsync", u8(1), u8(10), boolean(False), e("AsyncContext", "New", boolean(True))),
        op("LockFree", u8(1)),
        op("Shutdown"),
    ]
    lost = [
        store_open(0),
        lock_new(0, 0, opts=options(lease=e("Ms", "Short", u8(6)), renew=e("Ms", "Short", u8(3)))),
        op("SetLostCallback", u8(0), boolean(True), boolean(True)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        db_open(0),
        op("DbExecute", u8(0), sql("expire"), boolean(False)),
        op("Sleep", u8(12)),
        op("GuardCheck", u8(0)),
        op("GuardCheck", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(1)),
        op("GuardIsDirty", u8(1)),
        op("SetLostCallback", u8(0), boolean(True), boolean(False)),
        op("SetLostCallback", u8(0), boolean(False), boolean(True)),
        op("SetLostCallback", u8(NULL_LOCK), boolean(True), boolean(True)),
        op("SetLostCallback", u8(0), boolean(True), boolean(True)),
        op("LockFree", u8(0)),
    ]
    lock_options = [
        op("OptionsInit", e("OptionsSize", "Buffer", u8(16))),
        op("OptionsInit", e("OptionsSize", "Buffer", u8(15))),
        op("OptionsInit", e("OptionsSize", "Buffer", u8(40))),
        op("OptionsInit", e("OptionsSize", "Null", u64(16))),
        op("OptionsInit", e("OptionsSize", "Null", u64(2**63))),
        op("StoreOpenMemory", boolean(False), u8(0)),
        op("StoreOpenMemory", boolean(True), u8(1)),
        lock_new(0, 0, opts=options(size=12)),
        lock_new(0, 0, opts=options(size=24, tail=b"\x00\x00\x00\x00\x01")),
        lock_new(0, 0, opts=options(size=24, tail=b"\x00" * 8)),
        lock_new(1, 0, opts=options(lease=e("Ms", "Zero"))),
        lock_new(1, 0, opts=options(lease=e("Ms", "Short", u8(10)), renew=e("Ms", "Short", u8(6)))),
        lock_new(1, 0, opts=options(lease=e("Ms", "OverADay"))),
        lock_new(1, 0, opts=options(lease=e("Ms", "Day"), renew=e("Ms", "Any", u32(43_200_000)))),
        lock_new(2, 0, key=EMPTY),
        lock_new(2, 0, key=NOT_UTF8),
        lock_new(2, 0, label=NOT_UTF8),
        op("LockNew", u8(0), e("Text", "Null"), known(A), e("Options", "Null"), boolean(False), u8(2)),
        op("LockNew", u8(0), known(A), e("Text", "Null"), e("Options", "Null"), boolean(False), u8(2)),
        lock_new(2, NULL_STORE),
        lock_new(2, 0, null_out=True),
        op("StoreFree", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("Acquire", u8(1), u8(0), boolean(False), u8(1)),
    ]
    statements = [
        db_open(0),
        op("DbExecute", u8(0), sql("create"), boolean(False)),
        op("DbExecute", u8(0), sql("insert", [text(b"one")]), boolean(False)),
        op("DbExecute", u8(0), sql("insert", [integer(2)]), boolean(True)),
        op("DbExecute", u8(0), sql("insert2", [integer(1), text(b"again")]), boolean(False)),
        op("DbExecute", u8(0), sql("insert", [text(b"\xff")]), boolean(False)),
        op("DbExecute", u8(0), sql("insert", [], null_params=True), boolean(False)),
        op("DbExecute", u8(0), sql("two"), boolean(False)),
        op("DbExecute", u8(0), sql("empty"), boolean(False)),
        op("DbExecute", u8(0), sql("begin"), boolean(False)),
        op("DbExecute", u8(0), sql("savepoint"), boolean(False)),
        op("DbExecute", u8(0), sql("missing"), boolean(False)),
        op("DbExecute", u8(0), e("Sql", "Null") + vec([]) + boolean(False) + u8(0), boolean(False)),
        op("DbExecute", u8(0), e("Sql", "Bytes", raw(b"SELECT \xc3")) + vec([]) + boolean(False) + u8(0), boolean(False)),
        op("DbQuery", u8(0), sql("many"), rows(stop_after=7), e("InDbRow", "Nothing")),
        op("DbQuery", u8(0), sql("select"), rows(), e("InDbRow", "QuerySame")),
        op("DbQuery", u8(0), sql("select"), rows(stop_code=-5, stop_after=1), e("InDbRow", "ExecuteSame", sql("insert", [integer(9)]))),
        op("DbQuery", u8(0), sql("select3", [integer(1), text(b"x\x00y"), param("Blob", raw(b"\x00\x01"))]), rows(), e("InDbRow", "QueryOther", u8(1))),
        db_open(1, path=db_path(0, "Symlink")),
        op("DbQuery", u8(0), sql("select"), rows(), e("InDbRow", "QueryOther", u8(1))),
        op("DbQuery", u8(0), sql("select"), rows(null_callback=True), e("InDbRow", "Nothing")),
        op("DbQuery", u8(0), sql("insert", [integer(3)]), rows(), e("InDbRow", "Nothing")),
        op("DbSetBusyTimeout", u8(1), u8(0)),
        op("DbSetBusyTimeout", u8(NULL_DB), u8(0)),
        op("DbExecute", u8(1), sql("journal_delete"), boolean(False)),
        op("DbExecute", u8(1), sql("vacuum"), boolean(False)),
        op("DbFree", u8(0)),
        op("DbFree", u8(NULL_DB)),
    ]
    transactions = [
        db_open(0),
        op("DbBegin", u8(0), boolean(False), u8(0)),
        op("TxExecute", u8(0), sql("create"), boolean(False)),
        op("TxExecute", u8(0), sql("insert", [text(b"in a transaction")]), boolean(False)),
        op("TxQuery", u8(0), sql("select"), rows(), e("InTxRow", "ExecuteSame")),
        op("TxQuery", u8(0), sql("select"), rows(), e("InTxRow", "MaybeCommitSame")),
        op("TxQuery", u8(0), sql("select"), rows(), e("InTxRow", "QueryDb", u8(0))),
        op("TxMaybeCommit", u8(0), boolean(False), boolean(True)),
        op("TxCommit", u8(0)),
        op("DbBeginChunked", u8(0), e("ChunkMs", "Short", u8(0)), boolean(False), u8(1)),
        op("TxExecute", u8(1), sql("insert", [integer(5)]), boolean(False)),
        op("Sleep", u8(3)),
        op("TxMaybeCommit", u8(1), boolean(False), boolean(False)),
        op("TxQuery", u8(1), sql("select"), rows(), e("InTxRow", "CommitSame")),
        op("DbBeginChunked", u8(0), e("ChunkMs", "Zero"), boolean(False), u8(1)),
        op("DbBeginChunked", u8(0), e("ChunkMs", "Default"), boolean(False), u8(1)),
        op("TxExecute", u8(1), sql("commit"), boolean(False)),
        op("TxExecute", u8(1), sql("insert", [integer(6)]), boolean(False)),
        op("TxMaybeCommit", u8(1), boolean(False), boolean(True)),
        op("TxCommit", u8(1)),
        op("DbBegin", u8(0), boolean(False), u8(2)),
        op("TxQuery", u8(2), sql("select"), rows(), e("InTxRow", "RollbackSame")),
        op("DbBegin", u8(0), boolean(False), u8(2)),
        op("DbExecute", u8(0), sql("insert", [integer(7)]), boolean(False)),
        op("DbBegin", u8(0), boolean(False), u8(1)),
        op("TxCommit", u8(NULL_TX)),
        op("TxRollback", u8(NULL_TX)),
        op("DbFree", u8(0)),
        op("TxExecute", u8(2), sql("insert", [integer(8)]), boolean(False)),
        op("TxRollback", u8(2)),
    ]
    fenced = [
        store_open(0),
        lock_new(0, 0),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        db_open(0, path=db_path(0, "DoubleSlash")),
        op("DbBeginFenced", u8(0), u8(0), boolean(False), u8(0)),
        op("TxExecute", u8(0), sql("create"), boolean(False)),
        op("TxCommit", u8(0)),
        db_open(1),
        op("DbBeginFenced", u8(1), u8(0), boolean(False), u8(0)),
        op("StoreOpenMemory", boolean(False), u8(1)),
        lock_new(1, 1),
        op("TryAcquire", u8(1), boolean(False), u8(1)),
        op("DbBeginFenced", u8(0), u8(1), boolean(False), u8(0)),
        op("DbBeginFenced", u8(0), u8(NULL_GUARD), boolean(False), u8(0)),
        op("DbExecute", u8(0), sql("steal"), boolean(False)),
        op("DbBeginFenced", u8(0), u8(0), boolean(False), u8(0)),
        op("GuardCheck", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(2)),
        op("Acquire", u8(0), u8(5), boolean(False), u8(2)),
    ]
    threads = [
        store_open(0),
        lock_new(0, 0),
        lock_new(1, 0, key=A),
        db_open(0),
        op("DbExecute", u8(0), sql("create"), boolean(False)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        parallel(
            [
                op("TryAcquire", u8(0), boolean(False), u8(0)),
                op("Acquire", u8(1), u8(10), boolean(False), u8(1)),
                op("GuardCheck", u8(0)),
                op("DbExecute", u8(0), sql("insert", [integer(1)]), boolean(False)),
                op("SetLostCallback", u8(0), boolean(True), boolean(True)),
                op("GuardRelease", u8(6)),
                op("StoreOpen", db_path(0), boolean(False), u8(0)),
            ],
            [
                op("TryAcquire", u8(1), boolean(False), u8(0)),
                op("DbBegin", u8(0), boolean(False), u8(0)),
                op("TxExecute", u8(0), sql("insert", [integer(2)]), boolean(False)),
                op("SetLostCallback", u8(0), boolean(True), boolean(True)),
                op("DbQuery", u8(0), sql("select"), rows(), e("InDbRow", "Nothing")),
                op("TxCommit", u8(0)),
                op("LastError"),
            ],
        ),
        op("SetLostCallback", u8(0), boolean(True), boolean(True)),
        op("GuardRelease", u8(0)),
        op("Shutdown"),
    ]
    paths = [
        op("StoreOpen", e("PathArg", name), boolean(False), u8(0))
        for name in ["Null", "Empty", "NotUtf8", "NotADatabase", "Directory", "MissingDirectory", "Memory"]
    ] + [
        op("DbOpen", e("PathArg", name), boolean(False), u8(0), u8(3))
        for name in ["Null", "Empty", "NotUtf8", "NotADatabase", "Directory", "MissingDirectory", "Memory"]
    ] + [
        store_open(0, path=db_path(1, "Dot")),
        store_open(1, path=e("PathArg", "EndsAtNul", u8(1))),
        store_open(2, null_out=True),
        db_open(0, path=db_path(1, "Symlink")),
        db_open(1, path=e("PathArg", "EndsAtNul", u8(2)), null_out=True),
        lock_new(0, 0),
        lock_new(1, 1),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("TryAcquire", u8(1), boolean(False), u8(1)),
        op("GuardIsDirty", u8(1)),
    ]
    library = [op("StatusStr", u32(code)) for code in [0, 1, 4, 7, 8, 9, 2**31, 2**32 - 1]] + [
        op("LastError"),
        op("Version"),
        op("Shutdown"),
        op("StoreOpen", e("PathArg", "Empty"), boolean(False), u8(0)),
        op("LastError"),
        op("StatusStr", u32(5)),
        op("Version"),
        op("LastError"),
    ]
    contention = [
        store_open(0),
        lock_new(0, 0, opts=options(lease=e("Ms", "Short", u8(30)), renew=e("Ms", "Short", u8(10)))),
        db_open(0),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("DbBegin", u8(0), boolean(False), u8(0)),
        op("GuardRelease", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("Acquire", u8(0), u8(15), boolean(False), u8(0)),
        op("AcquireAsync", u8(0), u8(15), boolean(False), e("AsyncContext", "New", boolean(True))),
        db_open(1, path=db_path(0, "Dot")),
        op("DbExecute", u8(1), sql("insert", [integer(1)]), boolean(False)),
        op("DbBegin", u8(1), boolean(False), u8(1)),
        op("Sleep", u8(20)),
        op("TxRollback", u8(0)),
        op("DbExecute", u8(1), sql("steal"), boolean(False)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("Acquire", u8(0), u8(5), boolean(False), u8(0)),
        op("DbExecute", u8(1), sql("drop_lease"), boolean(False)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        store_open(1, path=db_path(0)),
        op("CollectAsync"),
        op("Shutdown"),
    ]
    # Everything held before lease_suspend is given up; writes are refused until lease_resume,
    # reads are not.
    suspension = [
        store_open(0),
        lock_new(0, 0),
        lock_new(1, 0, key=A),
        op("SetLostCallback", u8(0), boolean(True), boolean(True)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("StoreOpenMemory", boolean(False), u8(1)),
        lock_new(2, 1),
        op("TryAcquire", u8(2), boolean(False), u8(1)),
        db_open(0),
        op("DbExecute", u8(0), sql("create"), boolean(False)),
        db_open(2),
        op("DbExecute", u8(2), sql("journal_delete"), boolean(False)),
        op("DbFree", u8(2)),
        op("DbBegin", u8(0), boolean(False), u8(0)),
        op("TxExecute", u8(0), sql("insert", [integer(1)]), boolean(False)),
        op("Suspend", u8(50)),
        op("IsSuspended"),
        op("GuardCheck", u8(0)),
        op("GuardCheck", u8(1)),
        op("TxExecute", u8(0), sql("insert", [integer(2)]), boolean(False)),
        op("TxExecute", u8(0), sql("insert", [integer(3)]), boolean(False)),
        op("TxRollback", u8(0)),
        op("TryAcquire", u8(0), boolean(False), u8(2)),
        op("Acquire", u8(1), u8(5), boolean(False), u8(2)),
        op("AcquireAsync", u8(1), u8(5), boolean(False), e("AsyncContext", "New", boolean(True))),
        op("DbExecute", u8(0), sql("select"), boolean(False)),
        op("DbExecute", u8(0), sql("insert", [integer(4)]), boolean(False)),
        op("DbQuery", u8(0), sql("select"), rows(), e("InDbRow", "ExecuteSame", sql("insert", [integer(5)]))),
        op("DbBegin", u8(0), boolean(False), u8(0)),
        op("DbBeginFenced", u8(0), u8(0), boolean(False), u8(0)),
        store_open(1, path=db_path(1)),
        db_open(1, path=db_path(1, "Symlink")),
        db_open(2, path=db_path(2)),
        store_open(2, path=db_path(2)),
        op("DbOpen", e("PathArg", "Memory"), boolean(False), u8(2), u8(3)),
        op("StoreOpenMemory", boolean(False), u8(2)),
        op("Suspend", u8(0)),
        op("Resume"),
        op("IsSuspended"),
        op("TryAcquire", u8(0), boolean(False), u8(2)),
        op("GuardIsDirty", u8(2)),
        op("DbBegin", u8(0), boolean(False), u8(1)),
        op("TxCommit", u8(1)),
        op("CollectAsync"),
        op("Resume"),
        op("Suspend", u8(200)),
    ]
    # A suspension on one thread while the other writes and acquires.
    suspension_threads = [
        store_open(0),
        lock_new(0, 0),
        db_open(0),
        op("DbExecute", u8(0), sql("create"), boolean(False)),
        op("TryAcquire", u8(0), boolean(False), u8(0)),
        op("DbBeginChunked", u8(0), e("ChunkMs", "Short", u8(1)), boolean(False), u8(0)),
        parallel(
            [
                op("TxExecute", u8(0), sql("insert", [integer(1)]), boolean(False)),
                op("Sleep", u8(2)),
                op("TxMaybeCommit", u8(0), boolean(False), boolean(False)),
                op("TxExecute", u8(0), sql("insert", [integer(2)]), boolean(False)),
                op("Acquire", u8(0), u8(10), boolean(False), u8(0)),
                op("DbExecute", u8(0), sql("insert", [integer(3)]), boolean(False)),
                op("TxCommit", u8(0)),
            ],
            [
                op("Sleep", u8(1)),
                op("Suspend", u8(100)),
                op("IsSuspended"),
                op("GuardCheck", u8(0)),
                op("Resume"),
                op("TryAcquire", u8(0), boolean(False), u8(0)),
            ],
        ),
        op("GuardCheck", u8(0)),
        op("IsSuspended"),
        op("Suspend", u8(10)),
    ]
    return {
        "suspension": suspension,
        "suspension-threads": suspension_threads,
        "lock-lifecycle": lock_lifecycle,
        "async": asynchronous,
        "lost": lost,
        "lock-options": lock_options,
        "statements": statements,
        "transactions": transactions,
        "fenced": fenced,
        "threads": threads,
        "paths": paths,
        "library": library,
        "contention": contention,
    }


# ---- values ------------------------------------------------------------------------------------


def call(via, shape, params, null_params=False, count=None):
    return e("Via", via) + shape + vec(params) + boolean(null_params) + (count or e("Count", "All"))


def values_seeds():
    every_kind = [
        param("Null"), integer(-(2**63)), param("Real", f64(-0.0)), param("Real", f64(float("nan"))),
        param("Real", f64(float("inf"))), param("Real", f64(1e-310)), text("h\u00e9llo\x00world".encode()),
        param("Blob", raw(b"\x00\xff\x00")), text(b""), param("Blob", raw(b"")),
        param("NullData", u8(3), e("Len", "Zero")), param("NullData", u8(4), e("Len", "Zero")),
        param("NullData", u8(1), e("Len", "Absurd", u64(5))), param("NullData", u8(0), e("Len", "Max")),
    ]
    invalid = [
        integer(1), text(b"ok"), text(b"\xc3\x28"), param("BadKind", u32(0)),
    ]
    return {
        "echo": [
            call("DbQuery", e("Shape", "Echo"), every_kind),
            call("TxQuery", e("Shape", "Named"), every_kind),
        ],
        "invalid": [
            call("DbQuery", e("Shape", "Echo"), invalid),
            call("DbExecute", e("Shape", "Insert"), [param("BadKind", u32(7))]),
            call("TxExecute", e("Shape", "Echo"), [integer(1), param("NullData", u8(3), e("Len", "Small", u8(3)))]),
            call("TxQuery", e("Shape", "Echo"), [param("NullData", u8(4), e("Len", "Absurd", u64(0)))]),
            call("DbQuery", e("Shape", "Echo"), [param("NullData", u8(4), e("Len", "Max"))]),
            call("DbQuery", e("Shape", "Echo"), invalid, count=e("Count", "Fewer", u8(2))),
        ],
        "counts": [
            call("DbQuery", e("Shape", "Mismatch", boolean(True)), [integer(1)]),
            call("DbQuery", e("Shape", "Mismatch", boolean(False)), [integer(1), integer(2)]),
            call("DbExecute", e("Shape", "Echo"), [integer(1)], null_params=True),
            call("DbQuery", e("Shape", "Echo"), [], null_params=True, count=e("Count", "Absurd")),
            call("TxQuery", e("Shape", "Echo"), [integer(1)], null_params=True, count=e("Count", "Fewer", u8(1))),
            call("DbQuery", e("Shape", "CastText"), [integer(1), integer(2)]),
        ],
        "large": [
            call("TxExecute", e("Shape", "Insert"), [param("LongBlob", u8(0xab), u32(3 << 20)), param("LongText", u8(0x61), u32(1 << 20))]),
            call("DbQuery", e("Shape", "Echo"), [param("LongText", u8(0xe9), u32(1000))]),
            call("DbQuery", e("Shape", "Echo"), [param("LongBlob", u8(0), u32(2 << 20))]),
        ],
        "cast-and-insert": [
            call("DbQuery", e("Shape", "CastText"), [param("Blob", raw(b"\xff\xfe"))]),
            call("DbQuery", e("Shape", "CastText"), [param("Blob", raw("caf\u00e9".encode()))]),
            call("DbQuery", e("Shape", "CastText"), [text(b"a\x00b")]),
            call("DbExecute", e("Shape", "Insert"), every_kind),
            call("TxQuery", e("Shape", "Insert"), [text(b"t"), param("Real", f64(-0.0))]),
            call("DbExecute", e("Shape", "Insert"), [integer(1)]),
            call("DbQuery", e("Shape", "Insert"), [integer(1)]),
        ],
    }


def write(target, seeds):
    folder = os.path.join("corpus", target)
    os.makedirs(folder, exist_ok=True)
    for name, parts in seeds.items():
        with open(os.path.join(folder, f"seed-{name}"), "wb") as seed:
            seed.write(b"".join(parts))


if __name__ == "__main__":
    write("abi_sequence", abi_sequence_seeds())
    write("values", values_seeds())
