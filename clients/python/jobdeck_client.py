"""Jobdeck job-control client: seed 001's /job-operations and the reported-pipeline actions
of /task-operations. Standard library only, like seed 003's reporter.

    from jobdeck_client import Jobdeck
    jd = Jobdeck("http://127.0.0.1:3000", token="jd_...")   # or JOBDECK_URL / JOBDECK_TOKEN
    job = jd.create_job(kind="recap", user_id="user-1")
    jd.update_batch_job(job["id"], status="running",
                        detailed_status={"current_phase": "Fetch", "progress_percentage": 0,
                                         "active_tasks": 1, "error_count": 0})

Every call returns the answer's `data`. A refusal raises `JobdeckError` with the HTTP
status and the JSON body (`error`, and `field` for a bad request); a job deleted while
running raises `JobGone` (410), which a pipeline should take as "stop now".
"""

import json
import os
import urllib.error
import urllib.request


class JobdeckError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body.get('error', body)}")


class JobGone(JobdeckError):
    """The job was deleted; stop working on it."""


class Jobdeck:
    def __init__(self, url=None, token=None, timeout=10):
        self.url = (url or os.environ.get("JOBDECK_URL", "http://127.0.0.1:3000")).rstrip("/")
        self.token = token or os.environ["JOBDECK_TOKEN"]
        self.timeout = timeout

    def _call(self, route, action, data):
        body = json.dumps({"action": action, "data": data}).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}{route}",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))["data"]
        except urllib.error.HTTPError as error:
            try:
                payload = json.loads(error.read().decode("utf-8"))
            except ValueError:
                payload = {"error": error.reason}
            kind = JobGone if error.code == 410 else JobdeckError
            raise kind(error.code, payload) from None

    # /job-operations
    def create_job(self, **fields):
        """createJob: product_id, sending_group_id, priority, max_parallel_tasks,
        retry_config, resource_limits, and kind, user_id, trigger_source, tasks, stages."""
        return self._call("/job-operations", "createJob", fields)

    def update_batch_job(self, job_id, status=None, detailed_status=None, error_details=None):
        data = {"job_id": job_id}
        if status is not None:
            data["status"] = status
        if detailed_status is not None:
            data["detailed_status"] = detailed_status
        if error_details is not None:
            data["error_details"] = error_details
        return self._call("/job-operations", "updateBatchJob", data)

    def delete_job(self, job_id, force=False):
        return self._call("/job-operations", "deleteJob", {"job_id": job_id, "force": force})

    def get_job_info(self, job_id):
        return self._call("/job-operations", "getJobInfo", {"job_id": job_id})

    # /task-operations (reported pipelines)
    def add_tasks(self, job_id, tasks):
        """tasks: [{"name": ..., "payload": {...}, "depends_on": [names]}]"""
        return self._call("/task-operations", "addTasks", {"job_id": job_id, "tasks": tasks})

    def update_tasks(self, job_id, tasks):
        """tasks: [{"name": ..., "status": ..., "articles": n, "clusters": n,
        "message": ..., "error_details": {...}}]"""
        return self._call("/task-operations", "updateTasks", {"job_id": job_id, "tasks": tasks})

    def record_articles(self, job_id, articles):
        """articles: [{"feed_id": ..., "original_user_id": ..., "genre": ...}]"""
        return self._call(
            "/task-operations", "recordArticles", {"job_id": job_id, "articles": articles}
        )
