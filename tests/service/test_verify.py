"""``qora verify``: a clean ledger passes; any altered stored byte is found with its round and field."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from fleetkit import make_fleet, send_all
from qora.cli import main
from qora.service import Signer, verify_store


@pytest.fixture()
def ledger(tmp_path):
    fleet = make_fleet(tmp_path, n=6)
    engine = fleet.engine()
    engine.start()
    for r in (1, 2, 3):
        send_all(engine, fleet, r, byzantine={"n5"})
        engine.close()
    engine.store.close()
    return fleet, tmp_path / "fleet.db"


def test_a_clean_ledger_verifies_and_replays_every_q16_round(ledger):
    fleet, db = ledger
    report = verify_store(db, public_key=fleet.signer.public_key, keys=fleet.keys)
    assert report.ok and report.rounds == 3 and report.replayed_q16 == 3


@pytest.mark.parametrize("what, select, update, offset, field", [
    ("an update chunk", "SELECT message FROM chunks WHERE round=2 AND node='n1' AND idx=1",
     "UPDATE chunks SET message=? WHERE round=2 AND node='n1' AND idx=1", -40, "inputs[n1].digest"),
    ("a model", "SELECT data FROM models WHERE version=2", "UPDATE models SET data=? WHERE version=2",
     10, "model_out.digest"),
    ("a ledger record", "SELECT record FROM ledger WHERE round=2", "UPDATE ledger SET record=? WHERE round=2",
     -3, "hash"),
    ("a signature", "SELECT signature FROM ledger WHERE round=3", "UPDATE ledger SET signature=? WHERE round=3",
     5, "signature"),
    ("a reputation snapshot", "SELECT state FROM reputation WHERE round=1",
     "UPDATE reputation SET state=? WHERE round=1", -5, "reputation_after"),
])
def test_a_flipped_byte_is_found_with_its_round_and_field(ledger, what, select, update, offset, field):
    fleet, db = ledger
    con = sqlite3.connect(db)
    value = con.execute(select).fetchone()[0]
    raw = bytearray(value.encode() if isinstance(value, str) else value)
    raw[offset] ^= 0x01
    con.execute(update, (raw.decode() if isinstance(value, str) else bytes(raw),))
    con.commit()
    con.close()
    report = verify_store(db, public_key=fleet.signer.public_key)
    assert not report.ok, what
    fields = {(f.round, f.field) for f in report.findings}
    assert any(f == field for _r, f in fields), (what, report.findings)


def test_a_removed_record_breaks_the_chain(ledger):
    fleet, db = ledger
    con = sqlite3.connect(db)
    con.execute("DELETE FROM ledger WHERE round=2")
    con.commit()
    con.close()
    report = verify_store(db, public_key=fleet.signer.public_key)
    assert any(f.round == 3 and f.field == "prev" for f in report.findings)


def test_a_ledger_re_signed_with_another_key_fails_against_the_pinned_key(ledger):
    fleet, db = ledger
    other = Signer.generate()
    con = sqlite3.connect(db)
    for (r, rec) in con.execute("SELECT round, record FROM ledger").fetchall():
        con.execute("UPDATE ledger SET signature=? WHERE round=?", (other.sign(rec), r))
    con.execute("UPDATE meta SET value=? WHERE key='public_key'", (other.public_key,))
    con.commit()
    con.close()
    assert verify_store(db).ok                          # self-consistent with the swapped key...
    report = verify_store(db, public_key=fleet.signer.public_key)
    assert {f.field for f in report.findings} >= {"signature", "meta.public_key"}   # ...but not the real one


def test_an_altered_reject_count_is_found(ledger):
    fleet, db = ledger
    con = sqlite3.connect(db)
    con.execute("INSERT INTO rejects (round, reason, node, count) VALUES (2, 'bad_tag', 'n0', 1)")
    con.commit()
    con.close()
    report = verify_store(db)
    assert [(f.round, f.field) for f in report.findings] == [(2, "rejects")]


def test_qora_verify_command_exits_1_and_names_the_round_and_field(ledger):
    fleet, db = ledger
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", str(db), "--public-key", fleet.signer.public_key.hex()])
    assert ok.exit_code == 0, ok.output
    assert "ledger OK" in ok.output and "3 Q16.16 rounds replayed" in ok.output
    con = sqlite3.connect(db)
    data = bytearray(con.execute("SELECT data FROM models WHERE version=3").fetchone()[0])
    data[0] ^= 0x80
    con.execute("UPDATE models SET data=? WHERE version=3", (bytes(data),))
    con.commit()
    con.close()
    bad = runner.invoke(main, ["verify", str(db)])
    assert bad.exit_code == 1
    assert "model_out.digest" in bad.output and "3" in bad.output
