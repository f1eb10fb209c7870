#!/usr/bin/env python3
"""The Files API (issue 16): uploads streamed to disk, per organization, checked for their purpose.
  1 upload    a fine-tune JSONL (multipart, as the SDKs send it): the file object (bytes, sha256 of the
              content, purpose, filename, status processed); listed (purpose filter, limit/after pages,
              order); retrieved; its content downloaded byte for byte
  2 validate  a JSONL with a bad line 3 is a 400 naming line 3 (nothing stored); no purpose, an unknown
              purpose, no file, a body that is not multipart: 400s; purpose=model: garbage is a 400, a
              GGUF is stored
  3 tenants   another organization gets 404 on the file, its content and its deletion, and an empty list
  4 stream    a 39 MiB upload (Content-Length) raises the server's resident memory (sampled every 5 ms) by
              less than 12 MiB; its
              sha256 is the content's; a 41 MiB one is a 413 request_too_large (Content-Length and chunked)
  5 quota     uploads past the organization's quota are a 429 storage_quota_exceeded with
              x-should-retry: false; after a DELETE the same upload succeeds
  6 abort     a client that disconnects mid-upload leaves no file, no row and no temporary file
  7 delete    DELETE while the file is being downloaded: the download completes intact; then 404
Usage: files_api.py --neocloud BIN --vocab VOCAB.gguf --tmp DIR [--db sqlite|postgres --pg-url-file F]
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gateway_e2e import Backend, Fail, Org, Resp, Server, check, expect_error, run_server_suite, run_steps  # noqa: E402

MIB = 1 << 20
BOUNDARY = "----neocloud-test-7f3a9c"


def form(fields, file_name=None, content=None, boundary=BOUNDARY):
    """A multipart/form-data body: (name, value) fields, then the file part (as the openai SDK sends)."""
    out = b""
    if content is not None:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + b"\r\n"
    for k, v in fields:
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    return out + f"--{boundary}--\r\n".encode()


def upload(port, key, content, purpose="fine-tune", name="train.jsonl", chunked=False, fields=None):
    """POST /v1/files as the SDKs send it (multipart: the file part, then `purpose`); the response."""
    body = form(fields if fields is not None else [("purpose", purpose)], name, content)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        headers = {"Authorization": "Bearer " + key, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        if chunked:
            conn.request("POST", "/v1/files", body=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                         headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/v1/files", body=body, headers=headers)
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def example(i):
    return json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus one?"},
                                    {"role": "assistant", "content": f"{i + 1}"}]})


class FilesTest:
    def __init__(self, args):
        self.args = args
        self.backend = Backend(args)
        self.server = Server(args, self.backend)

    def upload(self, key, content, purpose="fine-tune", name="train.jsonl", chunked=False, fields=None):
        return upload(self.server.port, key, content, purpose, name, chunked, fields)

    def files_dir(self):
        return os.path.join(self.args.tmp, "files")

    def tmp_files(self):
        return os.listdir(os.path.join(self.files_dir(), ".tmp"))

    def rss_kib(self):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Fail("no VmRSS")

    def max_rss_during(self, fn):
        """fn()'s result and the server's largest resident size (KiB) sampled every 5 ms while it ran."""
        peak, done = [self.rss_kib()], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], self.rss_kib())
                time.sleep(0.005)
        th = threading.Thread(target=sample)
        th.start()
        try:
            return fn(), peak[0]
        finally:
            done.set()
            th.join()

    def setup(self):
        self.c = self.server_client
        self.op = self.server.admin_key
        self.a = Org(self, "files-a")
        self.b = Org(self, "files-b")
        self.a_key, _ = self.a.key(self.a.project("p"), "a")
        self.b_key, _ = self.b.key(self.b.project("p"), "b")

    def check_upload(self):
        content = ("\n".join(example(i) for i in range(12)) + "\n").encode()
        r = self.upload(self.a_key, content)
        check(r.status == 200, f"upload: {r}")
        f = r.json()
        check(f["object"] == "file" and f["id"].startswith("file-") and f["bytes"] == len(content)
              and f["purpose"] == "fine-tune" and f["filename"] == "train.jsonl" and f["status"] == "processed"
              and f["sha256"] == hashlib.sha256(content).hexdigest() and abs(f["created_at"] - time.time()) < 60,
              f"the file object: {f}")
        self.file = f
        got = self.c.ok("GET", f"/v1/files/{f['id']}", self.a_key)
        check(got == f, f"retrieve: {got} != {f}")
        r = self.c.call("GET", f"/v1/files/{f['id']}/content", self.a_key)
        check(r.status == 200 and r.body.encode() == content, f"content: {r.status}, {len(r.body)} bytes")
        # Two more, then pages.
        ids = [f["id"]] + [self.upload(self.a_key, content, name=f"t{i}.jsonl").json()["id"] for i in range(2)]
        lst = self.c.ok("GET", "/v1/files", self.a_key)
        check([x["id"] for x in lst["data"]] == ids[::-1] and lst["object"] == "list" and not lst["has_more"],
              f"list, newest first: {[x['id'] for x in lst['data']]} vs {ids[::-1]}")
        p1 = self.c.ok("GET", "/v1/files?limit=2&order=asc", self.a_key)
        p2 = self.c.ok("GET", f"/v1/files?limit=2&order=asc&after={p1['last_id']}", self.a_key)
        check([x["id"] for x in p1["data"]] == ids[:2] and p1["has_more"] and [x["id"] for x in p2["data"]] == ids[2:]
              and not p2["has_more"], f"pages: {p1}, {p2}")
        check(self.c.ok("GET", "/v1/files?purpose=model", self.a_key)["data"] == [], "purpose filter")
        expect_error(self.c.call("GET", "/v1/files?limit=0", self.a_key), 400, None, param="limit", what="limit=0")
        for extra in ids[1:]:
            self.c.ok("DELETE", f"/v1/files/{extra}", self.a_key)
        return f"{f['id']} {f['bytes']} bytes, sha256 {f['sha256'][:12]}…; listed, paged, downloaded"

    def check_validate(self):
        before = len(self.c.ok("GET", "/v1/files", self.a_key)["data"])
        bad = (example(1) + "\n" + example(2) + "\n" + '{"messages": [{"role": "wizard", "content": "x"}]}\n').encode()
        e = expect_error(self.upload(self.a_key, bad), 400, None, param="file", what="a bad line 3")
        check("line 3" in e["message"] and "role" in e["message"], f"the 400 names line 3 and the field: {e['message']}")
        e = expect_error(self.upload(self.a_key, b'{"messages": [{"role": "user", "content": "only a question"}]}\n'),
                         400, None, what="no assistant message")
        check("line 1" in e["message"], e["message"])
        expect_error(self.upload(self.a_key, b"not json\n"), 400, None, what="not JSON")
        expect_error(self.upload(self.a_key, b"x", fields=[]), 400, None, param="purpose", what="no purpose")
        expect_error(self.upload(self.a_key, b"x", purpose="assistants"), 400, None, param="purpose", what="other purpose")
        expect_error(self.upload(self.a_key, None), 400, None, param="file", what="no file part")
        r = self.c.call("POST", "/v1/files", self.a_key, {"purpose": "fine-tune"})
        e = expect_error(r, 400, None, what="a JSON body")
        check("multipart" in e["message"], e["message"])
        e = expect_error(self.upload(self.a_key, b"GGUF" + b"\0" * 100, purpose="model", name="m.gguf"), 400, None,
                         param="file", what="a garbage GGUF")
        check("GGUF" in e["message"] and self.args.tmp not in e["message"], f"no server path: {e['message']}")
        with open(os.path.join(self.args.tmp, "m.gguf"), "rb") as f:
            gguf = f.read()
        r = self.upload(self.a_key, gguf, purpose="model", name="my-model.gguf")
        check(r.status == 200 and r.json()["purpose"] == "model" and r.json()["bytes"] == len(gguf), f"a GGUF: {r}")
        self.c.ok("DELETE", f"/v1/files/{r.json()['id']}", self.a_key)
        after = len(self.c.ok("GET", "/v1/files", self.a_key)["data"])
        check(after == before and not self.tmp_files(), f"nothing stored by the refusals ({before} -> {after}, "
                                                        f"tmp {self.tmp_files()})")
        return f"400 names the line: {e['message'][:50]}…"

    def check_tenants(self):
        fid = self.file["id"]
        for method, path in (("GET", f"/v1/files/{fid}"), ("GET", f"/v1/files/{fid}/content"), ("DELETE", f"/v1/files/{fid}")):
            expect_error(self.c.call(method, path, self.b_key), 404, "file_not_found", what=f"B: {method} {path}")
        check(self.c.ok("GET", "/v1/files", self.b_key)["data"] == [], "B lists nothing")
        check(self.c.ok("GET", f"/v1/files/{fid}", self.a_key)["id"] == fid, "A's file is still there")
        return "404 for another organization"

    def check_stream(self):
        line = (example(7) + "\n").encode()
        big = line * ((39 * MIB) // len(line))
        self.big = big
        rss0 = self.rss_kib()
        r, peak = self.max_rss_during(lambda: self.upload(self.a_key, big, name="big.jsonl"))
        check(r.status == 200 and r.json()["sha256"] == hashlib.sha256(big).hexdigest(), f"a 39 MiB upload: {r}")
        self.big_id = r.json()["id"]
        grew = (peak - rss0) / 1024
        check(grew < 12, f"the server's peak memory grew {grew:.1f} MiB for a 39 MiB upload")
        too_big = line * ((41 * MIB) // len(line))
        for chunked in (False, True):
            e = expect_error(self.upload(self.a_key, too_big, chunked=chunked), 413, "request_too_large",
                             what=f"41 MiB, chunked={chunked}")
        check(not self.tmp_files(), f"no temporary file left: {self.tmp_files()}")
        return f"peak memory +{grew:.1f} MiB for 39 MiB; 41 MiB: 413 ({e['message'][:40]}…)"

    def check_quota(self):
        # Quota 100 MiB: the 39 MiB file + 2 × 30 MiB fit; 2 MiB more does not.
        line = (example(3) + "\n").encode()
        mid = line * ((30 * MIB) // len(line))
        ids = []
        for _ in range(2):
            r = self.upload(self.a_key, mid, name="mid.jsonl")
            check(r.status == 200, f"within the quota: {r}")
            ids.append(r.json()["id"])
        small = line * ((2 * MIB) // len(line))
        r = self.upload(self.a_key, small)
        e = expect_error(r, 429, "storage_quota_exceeded", what="past the quota")
        check(r.h("x-should-retry") == "false", f"x-should-retry: {r.headers}")
        check(self.upload(self.b_key, small).status == 200, "another organization's quota is its own")
        self.c.ok("DELETE", f"/v1/files/{ids[0]}", self.a_key)
        check(self.upload(self.a_key, small).status == 200, "after a DELETE it fits")
        return f"429: {e['message'][:60]}…"

    def check_abort(self):
        before = len(self.c.ok("GET", "/v1/files", self.a_key)["data"])
        body = form([("purpose", "fine-tune")], "cut.jsonl", (example(1) + "\n").encode() * 50000)
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall((f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.a_key}\r\n"
                   f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        s.sendall(body[:len(body) // 2])
        time.sleep(0.3)
        check(len(self.tmp_files()) == 1, f"the upload in progress is a temporary file: {self.tmp_files()}")
        s.close()
        deadline = time.time() + 10
        while self.tmp_files() and time.time() < deadline:
            time.sleep(0.05)
        after = len(self.c.ok("GET", "/v1/files", self.a_key)["data"])
        check(not self.tmp_files() and after == before, f"after the disconnect: tmp {self.tmp_files()}, files {before}->{after}")
        return "no file, no row, no temporary file"

    def check_delete(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        conn.request("GET", f"/v1/files/{self.big_id}/content", headers={"Authorization": "Bearer " + self.a_key})
        r = conn.getresponse()
        check(r.status == 200, f"download: {r.status}")
        head = r.read(MIB)
        self.c.ok("DELETE", f"/v1/files/{self.big_id}", self.a_key)
        data = head + r.read()
        conn.close()
        check(data == self.big, f"the download in flight completed intact ({len(data)} of {len(self.big)} bytes)")
        expect_error(self.c.call("GET", f"/v1/files/{self.big_id}", self.a_key), 404, "file_not_found", what="after DELETE")
        check(not os.path.exists(os.path.join(self.files_dir(), self.big_id)), "the bytes are gone from disk")
        return f"{len(data) // MIB} MiB downloaded intact across the DELETE"

    def run(self):
        self.setup()
        return run_steps([("upload", self.check_upload), ("validate", self.check_validate), ("tenants", self.check_tenants),
                          ("stream", self.check_stream), ("quota", self.check_quota), ("abort", self.check_abort),
                          ("delete", self.check_delete)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neocloud", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--pg-url-file")
    args = ap.parse_args()
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    args.serve_args = ["--files-dir", os.path.join(args.tmp, "files"), "--max-file-mib", "40", "--files-quota-mib", "100"]
    return run_server_suite(FilesTest(args))


if __name__ == "__main__":
    sys.exit(main())
