"""Submitting jobs to a cluster over its head's HTTP API, as Ray's
``ray.job_submission``: the entrypoint, a shell command, runs as a driver
inside the cluster, in a copy of your working directory if you give one.
See docs/jobs.md.

    from loom.job_submission import JobSubmissionClient, JobStatus
    client = JobSubmissionClient("http://head:8265")
    job = client.submit_job(entrypoint="python train.py",
                            runtime_env={"working_dir": "./project"})
    client.get_job_status(job)           # JobStatus.RUNNING ...
    print(client.get_job_logs(job))

With no address it uses $LOOM_DASHBOARD_ADDRESS, then $RAY_ADDRESS when it
is an http(s):// one, then the job API of this machine's latest session.
The cluster token goes as "Authorization: Bearer": from headers= if given,
else $LOOM_AUTH_TOKEN or $RAY_AUTH_TOKEN, else the local session's.
"""
import asyncio
import enum
import hashlib
import io
import json
import os
import ssl
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["JobSubmissionClient", "JobStatus", "JobDetails", "JobInfo",
           "JobType"]

# The head keeps packages in its key-value store, at most this large.
MAX_PACKAGE_BYTES = 64 << 20
_SKIPPED_DIRS = {".git", "__pycache__", ".venv", ".mypy_cache",
                 ".pytest_cache"}


class JobStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self):
        return self.value

    def is_terminal(self):
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED,
                        JobStatus.FAILED)


class JobType(str, enum.Enum):
    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


@dataclass
class JobDetails:
    """A job as the API lists it (Ray's JobDetails)."""
    type: JobType
    entrypoint: str
    status: JobStatus
    submission_id: Optional[str] = None
    job_id: Optional[str] = None
    message: Optional[str] = None
    error_type: Optional[str] = None
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    metadata: Dict[str, str] = field(default_factory=dict)
    runtime_env: Dict[str, Any] = field(default_factory=dict)
    driver_info: Optional[Dict[str, Any]] = None
    driver_agent_http_address: Optional[str] = None
    driver_node_id: Optional[str] = None
    driver_exit_code: Optional[int] = None
    entrypoint_num_cpus: Optional[float] = None
    entrypoint_num_gpus: Optional[float] = None
    entrypoint_memory: Optional[int] = None
    entrypoint_resources: Optional[Dict[str, float]] = None
    # Loom's: the job's limits (max_cpus, max_gpus, max_object_store_bytes,
    # max_actors, max_pending_tasks; 0: none). docs/security.md.
    quota: Optional[Dict[str, float]] = None

    @classmethod
    def from_json(cls, d):
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["type"] = JobType(known.get("type", "SUBMISSION"))
        known["status"] = JobStatus(known["status"])
        return cls(**known)


JobInfo = JobDetails


def _session_root():
    return os.environ.get("LOOM_SESSION_ROOT") or "/tmp/loom"


def _local_file(name):
    path = os.path.join(_session_root(), "session_latest", name)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _resolve_address(address):
    if not address:
        address = os.environ.get("LOOM_DASHBOARD_ADDRESS")
    if not address:
        ray = os.environ.get("RAY_ADDRESS", "")
        if ray.startswith(("http://", "https://")):
            address = ray
    if not address:
        address = _local_file("dashboard_address")
    if not address:
        raise ConnectionError(
            "no job API address: pass http://HEAD:8265, set "
            "LOOM_DASHBOARD_ADDRESS, or run on a machine whose session runs "
            "a head")
    if "://" not in address:
        # A cluster with TLS ($LOOM_TLS_DIR) serves its API over HTTPS only.
        scheme = "https" if os.environ.get("LOOM_TLS_DIR") else "http"
        address = f"{scheme}://{address}"
    return address.rstrip("/")


def _tls_context(address, verify):
    """The TLS context for an https:// job API: the cluster's CA from
    $LOOM_TLS_DIR (or `verify` when it names a CA file; verify=False checks
    nothing), presenting the node certificate there when there is one."""
    if not address.startswith("https://"):
        return None
    tls_dir = os.environ.get("LOOM_TLS_DIR")
    cafile = verify if isinstance(verify, str) else (
        os.path.join(tls_dir, "ca.pem") if tls_dir else None)
    context = ssl.create_default_context(cafile=cafile)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls_dir:
        context.load_cert_chain(os.path.join(tls_dir, "node.pem"),
                                os.path.join(tls_dir, "node.key"))
    return context


def _package(directory):
    """(name, zip bytes) of a directory: content-addressed, files relative
    to it, as Ray lays working directories out."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"working_dir {directory} is not a directory")
    buf = io.BytesIO()
    digest = hashlib.sha1()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            for name in sorted(files):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, directory)
                with open(path, "rb") as f:
                    data = f.read()
                digest.update(rel.encode() + b"\0" + data)
                z.writestr(rel, data)
                if buf.tell() > MAX_PACKAGE_BYTES:
                    break
    data = buf.getvalue()
    if len(data) > MAX_PACKAGE_BYTES:
        raise ValueError(
            f"working_dir {directory} zips to more than "
            f"{MAX_PACKAGE_BYTES >> 20} MiB, the head's limit for a package: "
            "leave large data out of it and read it from shared storage")
    return f"_loom_pkg_{digest.hexdigest()[:16]}.zip", data


class JobSubmissionClient:
    """The job API of a cluster's head (Ray's JobSubmissionClient)."""

    def __init__(self, address=None, create_cluster_if_needed=False,
                 cookies=None, metadata=None, headers=None, verify=True):
        self._address = _resolve_address(address)
        self._context = _tls_context(self._address, verify)
        self._headers = dict(headers or {})
        if not any(k.lower() == "authorization" for k in self._headers):
            token = (os.environ.get("LOOM_AUTH_TOKEN") or
                     os.environ.get("RAY_AUTH_TOKEN") or
                     _local_file("auth_token"))
            if token:
                self._headers["Authorization"] = f"Bearer {token}"
        self._default_metadata = dict(metadata or {})
        self._version = self.get_version()

    def _request(self, method, path, body=None, raw=None, ok=(200,)):
        data = raw
        headers = dict(self._headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self._address + path, data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120,
                                        context=self._context) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        except urllib.error.URLError as e:
            raise ConnectionError(
                f"cannot reach the job API at {self._address}: {e.reason}"
            ) from None
        if status not in ok:
            try:
                text = json.loads(text).get("error", text)
            except ValueError:
                pass
            raise RuntimeError(
                f"Request failed with status code {status}: {text}")
        return status, (json.loads(text) if text else None)

    def get_version(self):
        return self._request("GET", "/api/version")[1]["version"]

    def _upload_working_dir(self, runtime_env):
        wd = runtime_env.get("working_dir")
        if not wd or "://" in str(wd):
            return runtime_env
        name, data = _package(wd)
        path = f"/api/packages/gcs/{name}"
        status, _ = self._request("GET", path, ok=(200, 404))
        if status == 404:
            self._request("PUT", path, raw=data)
        return dict(runtime_env, working_dir=f"gcs://{name}")

    def submit_job(self, *, entrypoint, job_id=None, runtime_env=None,
                   metadata=None, submission_id=None,
                   entrypoint_num_cpus=None, entrypoint_num_gpus=None,
                   entrypoint_memory=None, entrypoint_resources=None,
                   quota=None):
        """Submits; returns the submission id. The same submission_id again
        returns that job: it is never started twice. `quota` (Loom's): the
        job's limits, e.g. {"max_cpus": 2, "max_actors": 4}."""
        body = {"entrypoint": entrypoint,
                "submission_id": submission_id or job_id,
                "runtime_env": self._upload_working_dir(dict(runtime_env or {})),
                "metadata": {**self._default_metadata, **(metadata or {})},
                "entrypoint_num_cpus": entrypoint_num_cpus,
                "entrypoint_num_gpus": entrypoint_num_gpus,
                "entrypoint_memory": entrypoint_memory,
                "entrypoint_resources": entrypoint_resources,
                "quota": quota}
        body = {k: v for k, v in body.items() if v is not None}
        return self._request("POST", "/api/jobs/", body)[1]["submission_id"]

    def stop_job(self, job_id):
        return self._request("POST", f"/api/jobs/{job_id}/stop")[1]["stopped"]

    def delete_job(self, job_id):
        return self._request("DELETE", f"/api/jobs/{job_id}")[1]["deleted"]

    def get_job_info(self, job_id):
        return JobDetails.from_json(
            self._request("GET", f"/api/jobs/{job_id}")[1])

    def list_jobs(self):
        return [JobDetails.from_json(j)
                for j in self._request("GET", "/api/jobs/")[1]]

    def get_job_status(self, job_id):
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id):
        return self._request("GET", f"/api/jobs/{job_id}/logs")[1]["logs"]

    def _logs_from(self, job_id, offset):
        r = self._request("GET", f"/api/jobs/{job_id}/logs?offset={offset}")[1]
        return r["logs"], r["offset"]

    def follow_job_logs(self, job_id, poll_s=0.2):
        """Yields the job's output as it comes, until the job ended and all
        of it was read."""
        import time
        offset = 0
        while True:
            ended = self.get_job_status(job_id).is_terminal()
            text, offset = self._logs_from(job_id, offset)
            if text:
                yield text
            elif ended:
                return
            else:
                time.sleep(poll_s)

    async def tail_job_logs(self, job_id):
        """Ray's async form of follow_job_logs."""
        loop = asyncio.get_running_loop()
        it = self.follow_job_logs(job_id)
        while True:
            chunk = await loop.run_in_executor(None, next, it, None)
            if chunk is None:
                return
            yield chunk
