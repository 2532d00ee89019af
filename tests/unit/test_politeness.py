import threading

from redpajama.pipelines.fetch.politeness import HostScheduler, Task


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def scheduler(per_host=1, delay=1.0):
    clock = Clock()
    return HostScheduler(per_host, delay, clock), clock


def test_one_host_waits_its_delay_while_others_go_first():
    sched, clock = scheduler(delay=2.0)
    for url in ("a/1", "a/2", "b/1", "c/1"):
        sched.add(Task(url, url.split("/")[0]))
    started = [sched.poll().url for _ in range(3)]
    assert started == ["a/1", "b/1", "c/1"] and sched.poll() is None
    sched.done(Task("a/1", "a"))
    clock.now += 1.9
    assert sched.poll() is None  # a was asked 1.9 s ago
    clock.now += 0.1
    assert sched.poll().url == "a/2"


def test_per_host_concurrency_caps_requests_in_flight_once_the_host_answered():
    sched, clock = scheduler(per_host=2, delay=0.0)
    for n in range(5):
        sched.add(Task(f"a/{n}", "a"))
    probe = sched.poll()
    assert probe.url == "a/0" and sched.poll() is None  # one request until the host has answered
    sched.done(probe)
    first, second = sched.poll(), sched.poll()
    assert (first.url, second.url) == ("a/1", "a/2") and sched.poll() is None
    sched.done(first)
    assert sched.poll().url == "a/3"


def test_the_delay_also_runs_from_the_end_of_a_request():
    sched, clock = scheduler(per_host=1, delay=1.0)
    sched.add(Task("a/1", "a"))
    sched.add(Task("a/2", "a"))
    task = sched.poll()
    clock.now += 5.0  # a slow answer
    sched.done(task)
    clock.now += 0.5
    assert sched.poll() is None
    clock.now += 0.5
    assert sched.poll().url == "a/2"


def test_retry_goes_first_after_its_backoff_and_counts_attempts():
    sched, clock = scheduler(delay=0.5)
    sched.add(Task("a/1", "a"))
    sched.add(Task("a/2", "a"))
    task = sched.poll()
    sched.retry(task, after=4.0)
    clock.now += 3.9
    assert sched.poll() is None
    clock.now += 0.1
    again = sched.poll()
    assert (again.url, again.attempt) == ("a/1", 1)


def test_crawl_delay_slows_one_host():
    sched, clock = scheduler(delay=1.0)
    sched.add(Task("a/1", "a"))
    sched.add(Task("a/2", "a"))
    sched.slow_down("a", 10.0)
    task = sched.poll()
    sched.done(task)
    clock.now += 5
    assert sched.poll() is None
    clock.now += 5
    assert sched.poll().url == "a/2"


def test_take_ends_when_input_is_done_and_nothing_is_in_flight():
    sched = HostScheduler(per_host=4, delay=0.0)
    for n in range(20):
        sched.add(Task(f"h{n % 3}/{n}", f"h{n % 3}"))
    sched.input_done()
    seen = []
    lock = threading.Lock()

    def worker():
        while (task := sched.take()) is not None:
            with lock:
                seen.append(task.url)
            sched.done(task)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(seen) == sorted(f"h{n % 3}/{n}" for n in range(20))
    assert not any(thread.is_alive() for thread in threads)


def test_close_releases_waiting_workers():
    sched = HostScheduler(per_host=1, delay=3600.0)
    sched.add(Task("a/1", "a"))
    sched.add(Task("a/2", "a"))
    assert sched.take().url == "a/1"
    result = []
    waiter = threading.Thread(target=lambda: result.append(sched.take()))
    waiter.start()
    sched.close()
    waiter.join(timeout=30)
    assert result == [None]
