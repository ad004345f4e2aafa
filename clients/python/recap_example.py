"""Drives one recap job through seed 002's eight stages with Jobdeck's Python client.

    JOBDECK_URL=http://127.0.0.1:3000 JOBDECK_TOKEN=jd_... python3 recap_example.py

Prints the job id, then "completed" once the job is done. STAGE_SECONDS (default 0) slows
each stage down so the run can be watched on the job's page.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobdeck_client import Jobdeck, JobGone  # noqa: E402

STAGES = ["Fetch", "Preprocess", "Dedup", "Genre", "Select", "Evidence", "Dispatch", "Persist"]
GENRES = ["tech", "business", "sports"]


def main():
    jd = Jobdeck()
    pause = float(os.environ.get("STAGE_SECONDS", "0"))
    job = jd.create_job(kind="recap", user_id="user-42", trigger_source="user")
    job_id = job["id"]
    print(job_id, flush=True)
    jd.add_tasks(job_id, [{"name": g, "payload": {"genre": g}} for g in GENRES])
    try:
        for i, stage in enumerate(STAGES):
            jd.update_batch_job(
                job_id,
                status="running",
                detailed_status={
                    "current_phase": stage,
                    "progress_percentage": round(i * 100 / len(STAGES), 1),
                    "active_tasks": len(GENRES) if stage == "Genre" else 1,
                    "error_count": 0,
                },
            )
            if stage == "Fetch":
                jd.record_articles(
                    job_id,
                    [
                        {"feed_id": f"feed-{n % 5}", "original_user_id": "user-42",
                         "genre": GENRES[n % len(GENRES)]}
                        for n in range(30)
                    ],
                )
            if stage == "Genre":
                jd.update_tasks(job_id, [{"name": g, "status": "running"} for g in GENRES])
                jd.update_tasks(
                    job_id,
                    [{"name": g, "status": "completed", "articles": 10, "clusters": 3,
                      "message": f"{g}: 10 articles in 3 clusters"} for g in GENRES],
                )
            time.sleep(pause)
        jd.update_batch_job(
            job_id,
            status="completed",
            detailed_status={"current_phase": "Persist", "progress_percentage": 100,
                             "active_tasks": 0, "error_count": 0},
        )
    except JobGone:
        print("deleted while running; stopping", flush=True)
        return 0
    print(jd.get_job_info(job_id)["job"]["status"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
