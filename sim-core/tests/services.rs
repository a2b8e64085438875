//! Services run through the whole engine. Until the `users` kind exists,
//! the load is a small caller kind registered here (a fixed-rate source of
//! calls that counts the replies by status), and a stub kind in the
//! `stores` section stands for a dependency whose answers are known (it
//! counts the calls it receives, answers each with a set status, applies
//! the request's effect in its own domain, and acknowledges `done`s).
//!
//! The named regression tests of issue 13: pool exhaustion cascading
//! upstream, and retry amplification. Once `users` is merged they can be
//! written with `[users.NAME]` in place of `[callers.NAME]`.

use crate::common::{metric, show};
use sim_core::engine::{boxed, Component, Ctx, DynComponent, NoTimer, RunOutput, Timer};
use sim_core::kind::{Build, Kind, Node};
use sim_core::message::{Msg, NodeId, Record};
use sim_core::protocol::rpc::{RpcMsg, Status};
use sim_core::registry::Registry;
use sim_core::scenario::{run_config, Scenario};
use sim_core::time::NS_PER_MS;

/// `[callers.NAME]`: `count` calls to `target`, one every `every_ms`, each
/// with a deadline `timeout_ms` ahead.
struct CallerKind;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerSpec {
    target: String,
    count: u64,
    every_ms: u64,
    timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Tick;

impl Timer for Tick {
    fn to_word(self) -> u64 {
        0
    }
    fn from_word(w: u64) -> Option<Self> {
        (w == 0).then_some(Tick)
    }
}

struct Caller {
    target: NodeId,
    left: u64,
    every_ns: u64,
    timeout_ns: u64,
}

impl Component for Caller {
    type Timer = Tick;
    fn start(&mut self, ctx: &mut Ctx<Tick>) {
        ctx.set_timer(0, Tick);
    }
    fn on_message(&mut self, ctx: &mut Ctx<Tick>, _: NodeId, msg: Msg) {
        if let Msg::Rpc(RpcMsg::Reply { status, .. }) = msg {
            ctx.metric_add(
                match status {
                    Status::Ok | Status::Accepted => "caller_ok",
                    Status::Error => "caller_500",
                    Status::Unavailable => "caller_503",
                    Status::GatewayTimeout => "caller_504",
                },
                1.0,
            );
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<Tick>, _: Tick) {
        if self.left == 0 {
            return;
        }
        self.left -= 1;
        let id = ctx.produce(0, false);
        let deadline = ctx.now() + self.timeout_ns;
        ctx.send(self.target, RpcMsg::Call { rec: Record::new(id, 0), call: id, deadline });
        ctx.metric_add("caller_sent", 1.0);
        if self.left == 0 {
            ctx.producer_done();
        } else {
            ctx.set_timer(self.every_ns, Tick);
        }
    }
    fn crash(&mut self) {}
    fn is_producer(&self) -> bool {
        true
    }
}

impl Kind for CallerKind {
    type Spec = CallerSpec;
    const NAME: &'static str = "caller";
    const SECTION: &'static str = "callers";
    const METRICS: &'static [&'static str] = &["caller_sent", "caller_ok", "caller_500", "caller_503", "caller_504"];

    fn messages(&self, s: &CallerSpec) -> Option<Option<u64>> {
        Some(Some(s.count))
    }

    fn build(&self, _: &Node, s: &CallerSpec, b: &mut Build) -> Box<dyn DynComponent> {
        boxed(Caller {
            target: b.id(&s.target),
            left: s.count,
            every_ns: s.every_ms * NS_PER_MS,
            timeout_ns: s.timeout_ms * NS_PER_MS,
        })
    }
}

/// `[stores.NAME]` of kind `stub`: answers every call with `status` (200,
/// 500 or 503) at once.
struct StubKind;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StubSpec {
    status: u16,
}

struct Stub {
    status: Status,
}

impl Component for Stub {
    type Timer = NoTimer;
    fn start(&mut self, _: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, ctx: &mut Ctx<NoTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Rpc(RpcMsg::Call { rec, call, .. }) => {
                ctx.metric_add("stub_calls", 1.0);
                if self.status == Status::Ok {
                    ctx.apply_effect(rec.id);
                }
                ctx.send(from, RpcMsg::Reply { id: rec.id, call, status: self.status });
            }
            Msg::Rpc(RpcMsg::Done { id, .. }) => {
                ctx.metric_add("stub_dones", 1.0);
                ctx.send(from, RpcMsg::DoneAck { id });
            }
            _ => {}
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<NoTimer>, t: NoTimer) {
        match t {}
    }
    fn crash(&mut self) {}
}

impl Kind for StubKind {
    type Spec = StubSpec;
    const NAME: &'static str = "stub";
    const SECTION: &'static str = "stores";
    const METRICS: &'static [&'static str] = &["stub_calls", "stub_dones"];

    fn domain(&self, _: &StubSpec, _: &sim_core::kind::Topology) -> Option<String> {
        Some("db".into())
    }

    fn build(&self, _: &Node, s: &StubSpec, _: &mut Build) -> Box<dyn DynComponent> {
        let status = match s.status {
            200 => Status::Ok,
            503 => Status::Unavailable,
            _ => Status::Error,
        };
        boxed(Stub { status })
    }
}

fn run(text: &str, seed: u64) -> RunOutput {
    let mut registry = Registry::builtin();
    registry.register(CallerKind).register(StubKind);
    let s = Scenario::parse_with("services.toml", text, registry).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let config = s.configs().unwrap().remove(0).1;
    run_config(&config, seed, 0).completed().unwrap()
}

const HEAD: &str = "name = \"services\"\nconcept = \"a test\"\nrun = { duration_ms = 60000 }\n\
                    [network]\nlatency = { dist = \"constant\", ms = 1 }\n";

/// A calls a slow B (1 s per request, plenty of workers): A's 10 workers
/// are all held waiting on B, its accept queue (5) fills, and A answers
/// 503 to the rest, though B itself refuses nothing.
#[test]
fn pool_exhaustion_cascades_upstream() {
    let text = format!(
        "{HEAD}[callers.u]\ntarget = \"a\"\ncount = 200\nevery_ms = 10\ntimeout_ms = 10000\n\
         [services.a]\nworkers = 10\nqueue_limit = 5\n\
         [[services.a.dependencies]]\ntarget = \"b\"\ntimeout_ms = 5000\n\
         [services.b]\nprocessing = {{ dist = \"constant\", ms = 1000 }}\n"
    );
    let out = run(&text, 1);
    let s = show(&out);
    assert_eq!(metric(&out, "caller_sent"), 200.0, "{s}");
    // Calls arrive over 2 s; each request holds an A worker for over 1 s,
    // so A's 10 workers take at most 20 of them in that time and its queue
    // holds 5 more: at least 175 are refused.
    assert!(metric(&out, "caller_503") >= 175.0, "{s}");
    assert_eq!(metric(&out, "caller_503"), metric(&out, "requests_rejected"), "only A refuses: {s}");
    // Those admitted all succeed (B is slow, not failing): at least the
    // first 10 + 5.
    let ok = metric(&out, "caller_ok");
    assert!(ok >= 15.0 && ok + metric(&out, "caller_503") == 200.0, "{s}");
    assert_eq!(metric(&out, "pool_saturation_max"), 1.0, "{s}");
    assert_eq!(out.errors.values().sum::<u64>(), 0, "internal failures are metrics: {s}");
}

/// A retries a failing B twice: B receives (1 + retries) calls for each
/// call A received.
#[test]
fn retry_amplification() {
    let text = format!(
        "{HEAD}[callers.u]\ntarget = \"a\"\ncount = 100\nevery_ms = 10\ntimeout_ms = 10000\n\
         [services.a]\n\
         [[services.a.dependencies]]\ntarget = \"b\"\nretries = 2\nbackoff_ms = 10\njitter = \"full\"\n\
         [stores.b]\nkind = \"stub\"\nstatus = 500\n"
    );
    let out = run(&text, 1);
    let s = show(&out);
    assert_eq!(metric(&out, "caller_sent"), 100.0, "{s}");
    assert_eq!(metric(&out, "stub_calls"), 300.0, "3 x 100: {s}");
    assert_eq!(metric(&out, "dependency_retries"), 200.0, "{s}");
    assert_eq!(metric(&out, "dependency_errors"), 300.0, "{s}");
    assert_eq!(metric(&out, "caller_500"), 100.0, "every request failed: {s}");
}

/// A breaker in front of the failing B stops the amplification: after it
/// opens, calls fail at once without reaching B.
#[test]
fn a_breaker_stops_retry_amplification() {
    let text = format!(
        "{HEAD}[callers.u]\ntarget = \"a\"\ncount = 100\nevery_ms = 10\ntimeout_ms = 10000\n\
         [services.a]\n\
         [[services.a.dependencies]]\ntarget = \"b\"\nretries = 2\nbackoff_ms = 10\n\
         breaker = {{ sliding_window = 10, minimum_calls = 10 }}\n\
         [stores.b]\nkind = \"stub\"\nstatus = 500\n"
    );
    let out = run(&text, 1);
    let s = show(&out);
    // 10 failed calls open it (60 s open: the rest of the run); the
    // attempts in flight then are at most the requests in progress.
    assert!(metric(&out, "stub_calls") < 30.0, "{s}");
    assert_eq!(metric(&out, "breaker_opened"), 1.0, "{s}");
    assert!(metric(&out, "breaker_rejected") >= 90.0, "{s}");
    assert_eq!(metric(&out, "caller_503") + metric(&out, "caller_500"), 100.0, "{s}");
}

/// Worker mode end to end: a producer publishes jobs to a queue broker, a
/// worker service does each (a call to the stub store, which applies the
/// effect) and tells the stub it is done; nothing is lost.
#[test]
fn a_worker_does_every_job_and_tells_notify() {
    let text = format!(
        "{HEAD}[producers.p]\ntarget = \"jobs\"\narrival = {{ process = \"poisson\", rate_per_s = 100 }}\nmessages = 300\n\
         acks = \"broker\"\nretries = 10\n\
         [brokers.jobs]\nkind = \"queue\"\n\
         [services.w]\nworkers = 4\nsource = \"jobs\"\nnotify = \"db\"\n\
         processing = {{ dist = \"exponential\", mean_ms = 5 }}\n\
         [[services.w.dependencies]]\ntarget = \"db\"\n\
         [stores.db]\nkind = \"stub\"\nstatus = 200\n"
    );
    let out = run(&text, 1);
    let s = show(&out);
    assert_eq!(out.counts.lost, 0, "{s}");
    assert_eq!(metric(&out, "stub_calls"), 300.0, "{s}");
    assert_eq!(metric(&out, "stub_dones"), 300.0, "{s}");
    assert!(metric(&out, "pool_saturation_max") > 0.0, "{s}");
}

/// Bad tables are refused naming the field and its line.
#[test]
fn bad_service_tables_name_the_field_and_line() {
    let mut registry = Registry::builtin();
    registry.register(CallerKind).register(StubKind);
    let cases = [
        ("[[services.a.dependencies]]\ntarget = \"nowhere\"\n", "services.a.dependencies.0.target", "nowhere"),
        ("[[services.a.dependencies]]\ntarget = \"a\"\n", "services.a.dependencies.0.target", "itself"),
        (
            "[[services.a.dependencies]]\ntarget = \"b\"\nbreaker = { half_open_calls = 0 }\n",
            "services.a.dependencies.0.breaker.half_open_calls",
            "expected",
        ),
        (
            "[[services.a.dependencies]]\ntarget = \"b\"\njiter = \"full\"\n",
            "services.a.dependencies.0.jiter",
            "jitter",
        ),
        ("notify = \"b\"\n", "services.a.notify", "worker"),
        (
            "source = \"q\"\nnotify = \"c\"\n[brokers.q]\nkind = \"queue\"\n[services.c]\nworkers = 1\nprocessing = { dist = \"constant\", ms = 1 }\n",
            "services.a.notify",
            "no edge named `c`",
        ),
        (
            "[[services.a.dependencies]]\ntarget = \"c\"\n[services.c]\nworkers = 1\nprocessing = { dist = \"constant\", ms = 1 }\n[[services.c.dependencies]]\ntarget = \"a\"\n",
            "services.a.dependencies",
            "a -> c -> a",
        ),
        ("source = \"b\"\n", "services.a.source", "queue broker"),
    ];
    for (extra, field, words) in cases {
        let text = format!("{HEAD}[stores.b]\nkind = \"stub\"\nstatus = 200\n[services.a]\nworkers = 2\n{extra}");
        let err = Scenario::parse_with("s.toml", &text, registry.clone()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
        assert!(err.message.contains(words), "{err}");
        assert!(err.line.is_some(), "{err}");
    }
}
