//! The pictures and the report (issue 9), through the real binary: every
//! plot is written, SVG and PNG, non-empty, with the series the run calls
//! for (derived from its own summary.json); fault windows are shaded; the
//! report's links resolve; the same seed gives the same bytes, whatever
//! the number of threads; and the report renders in a real browser
//! (headless Chromium): no console error, every image decoded with a
//! non-zero size, a screenshot that is not blank.

use crate::common;

use common::{asyncsim, bin, repo, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn run(file: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", file, "--out", out.to_str().unwrap(), "--no-progress"];
    args.extend_from_slice(extra);
    let o = asyncsim(&args);
    assert_eq!(o.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Every file of a folder, by name, with its bytes (the folder is flat,
/// or one level deep for the main job).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                all.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    all
}

/// The values of every `attr="..."` in an HTML text.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let key = format!("{attr}=\"");
    html.match_indices(&key)
        .map(|(i, _)| {
            let rest = &html[i + key.len()..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

/// Checks that every link and image of the page at `page` points at a
/// file that exists; returns the image sources. Links to the guide's
/// chapters (`.md`) are checked apart: [`the_pages_link_their_chapter_and_the_index_groups_by_chapter`].
fn links_resolve(page: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(page).unwrap();
    let dir = page.parent().unwrap();
    let (hrefs, srcs) = (attrs(&html, "href"), attrs(&html, "src"));
    for target in hrefs.iter().filter(|h| !h.ends_with(".md")).chain(&srcs) {
        assert!(!target.contains("://"), "{}: the report fetches nothing from anywhere: {target}", page.display());
        assert!(dir.join(target).is_file(), "{}: the link {target} leads nowhere", page.display());
    }
    srcs
}

/// The PNG's width and height, read from its header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// The palette's colours, in variant order, as the SVGs write them.
const COLOURS: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"];

/// How many series each built-in plot must hold, from the run's summary.
fn expected_series(summary: &Value) -> BTreeMap<&'static str, usize> {
    let variants = summary["variants"].as_object().unwrap();
    let n = variants.len();
    let completed = variants.values().filter(|v| v["latency_ms"]["count"].as_u64().unwrap() > 0).count();
    let kinds: usize = variants.values().map(|v| v["errors_by_kind"].as_object().unwrap().len()).sum();
    BTreeMap::from([
        ("latency-cdf", completed),
        ("latency-percentiles", n),
        ("throughput", 2 * n),
        ("depth-lag", 2 * n),
        ("outcomes", n),
        ("errors", kinds),
    ])
}

#[test]
fn every_plot_is_written_with_the_series_the_run_calls_for() {
    let dir = TempDir::new("plots");
    let out = dir.path().join("out");
    run("scenarios/network-faults.toml", &out, &[]);
    let summary = read_json(&out.join("summary.json"));
    let index = read_json(&out.join("plots.json"));
    let plots: BTreeMap<String, &Value> =
        index.as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap().to_string(), p)).collect();
    let variants: Vec<&String> = summary["variants"].as_object().unwrap().keys().collect();
    for (name, want) in expected_series(&summary) {
        let plot = plots.get(name).unwrap_or_else(|| panic!("no plot {name} in plots.json"));
        let series = plot["series"].as_array().unwrap();
        assert_eq!(series.len(), want, "{name}: {series:?}");
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}.svg is a whole SVG");
        assert!(svg.contains("@font-face") && svg.contains("data:font/ttf;base64,"), "{name}.svg embeds its font");
        for label in series {
            let shown: String = label.as_str().unwrap().chars().take(39).collect();
            assert!(svg.contains(&shown), "{name}.svg names the series {label} in its legend");
        }
        for (i, _) in variants.iter().enumerate().filter(|_| want > 0) {
            assert!(svg.contains(COLOURS[i]), "{name}.svg draws variant {i} in its colour {}", COLOURS[i]);
        }
        let png = std::fs::read(out.join(format!("{name}.png"))).unwrap();
        assert_eq!(png_size(&png), (960, 540), "{name}.png");
        assert!(png.len() > 5_000, "{name}.png holds a picture ({} bytes)", png.len());
    }
    // The scenario has a partition, a crash and a loss spike: every time
    // plot shades them, in their own shades, and names them.
    for name in ["throughput", "depth-lag", "errors"] {
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        for (shade, fault) in [("#C6DBEF", "partition"), ("#F4CCCC", "crash consumer"), ("#E0D0EC", "loss spike")] {
            assert!(svg.contains(shade), "{name}.svg shades the {fault} window");
            assert!(svg.contains(fault), "{name}.svg names the {fault} window");
        }
    }
}

#[test]
fn the_readme_shows_current_plots() {
    // docs/img/ holds what scripts/readme-images.sh writes: two plots of
    // network-faults at its own seed.
    let dir = TempDir::new("readme-img");
    let out = dir.path().join("out");
    run("scenarios/network-faults.toml", &out, &[]);
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for (plot, img) in
        [("latency-cdf", "network-faults-latency-cdf.png"), ("depth-lag", "network-faults-depth-lag.png")]
    {
        assert!(readme.contains(&format!("(docs/img/{img})")), "the README shows {img}");
        let fresh = std::fs::read(out.join(format!("{plot}.png"))).unwrap();
        let kept = std::fs::read(repo().join("docs/img").join(img)).unwrap();
        assert!(fresh == kept, "docs/img/{img} is out of date: run scripts/readme-images.sh");
    }
}

#[test]
fn no_plots_writes_none_and_the_page_still_resolves() {
    let dir = TempDir::new("no-plots");
    let out = dir.path().join("out");
    // A run with plots, then one without into the same folder: the
    // earlier plots go, as any file the new run does not write.
    run("scenarios/mm1.toml", &out, &[]);
    assert!(out.join("throughput.svg").is_file());
    run("scenarios/mm1.toml", &out, &["--no-plots"]);
    let names: Vec<String> = files(&out).into_keys().collect();
    assert!(!names.iter().any(|n| n.ends_with(".svg") || n.ends_with(".png") || n == "plots.json"), "{names:?}");
    assert!(links_resolve(&out.join("index.html")).is_empty(), "no image on the page");
}

#[test]
fn the_page_tells_the_scenario_and_its_command_reproduces_every_byte() {
    let dir = TempDir::new("page");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run("scenarios/outbox.toml", &a, &["--seed", "7", "--set", "network.loss_probability=0.02"]);
    let page = std::fs::read_to_string(a.join("index.html")).unwrap();
    let summary = read_json(&a.join("summary.json"));
    assert!(page.contains(summary["concept"].as_str().unwrap().split(':').next().unwrap()), "the concept");
    assert!(page.contains("Dual writes") || page.contains("dual write"), "the scenario's header comment");
    for (name, v) in summary["variants"].as_object().unwrap() {
        assert!(page.contains(name.as_str()), "variant {name} in the table");
        for e in v["expectations"].as_array().unwrap() {
            let text = e["expect"].as_str().unwrap().replace('<', "&lt;").replace('>', "&gt;");
            assert!(page.contains(&text), "expectation {text} on the page");
        }
        for j in v["invariants"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let line = format!("<b>{name}</b>: <code>{}</code>", j["invariant"].as_str().unwrap());
            assert!(page.contains(&line), "the claimed invariant {line} on the page");
        }
    }
    assert!(page.contains("<h2>Invariants</h2>"), "outbox's variants claim invariants");
    assert!(page.contains("crash service-a"), "the faults that happened");
    let chapter = "Learn the concept: <a class=\"chapter\" href=\"";
    let at = page.find(chapter).expect("a link to the guide's chapter") + chapter.len();
    assert!(
        page[at..].starts_with("../../") || page[at..].starts_with("docs/"),
        "a path, not a URL: {}",
        &page[at..at + 80]
    );
    assert!(page[at..].contains("07-outbox.md\">Chapter 07: The outbox"), "{}", &page[at..at + 120]);
    let images = links_resolve(&a.join("index.html"));
    assert!(images.len() >= 6, "every plot inline: {images:?}");
    // The page's command, run as written (into another folder), gives
    // the same files, byte for byte.
    let start = page.find("<pre class=\"cmd\">").expect("a command") + "<pre class=\"cmd\">".len();
    let cmd = page[start..start + page[start..].find("</pre>").unwrap()].replace("&#39;", "'");
    let args: Vec<String> = cmd.split_whitespace().skip(1).map(|s| s.trim_matches('\'').to_string()).collect();
    assert!(
        args.contains(&"--seed".to_string()) && args.contains(&"network.loss_probability=0.02".to_string()),
        "{cmd}"
    );
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--out", b.to_str().unwrap(), "--no-progress"]);
    assert_eq!(asyncsim(&args).status.code(), Some(0));
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        if name != ".asyncsim-manifest.json" {
            assert!(fb[name] == *bytes, "{name} differs between two runs of the same command");
        }
    }
}

/// The main job's output, run once per thread count (1 and 3), each in a
/// fresh working folder: (folder with one thread, folder with three).
fn main_job() -> &'static (PathBuf, PathBuf) {
    static JOB: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    JOB.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("asyncsim-test-mainjob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut dirs = Vec::new();
        for threads in ["1", "3"] {
            let cwd = root.join(format!("threads-{threads}"));
            std::fs::create_dir_all(&cwd).unwrap();
            let o = Command::new(bin())
                .arg("--no-progress")
                .env("RAYON_NUM_THREADS", threads)
                .current_dir(&cwd)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
            let index = cwd.join("out/index.html");
            let told = stdout.lines().last().unwrap_or_default();
            assert!(told.starts_with("report: ") && told.ends_with("index.html"), "prints where the report is: {told}");
            assert!(Path::new(told.trim_start_matches("report: ")).is_file(), "{told}");
            assert!(index.is_file());
            dirs.push(cwd.join("out"));
        }
        (dirs.remove(0), dirs.remove(0))
    })
}

fn bundled() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_main_job_links_every_scenario_and_is_identical_on_one_thread_and_three() {
    let (one, three) = main_job();
    let index = std::fs::read_to_string(one.join("index.html")).unwrap();
    links_resolve(&one.join("index.html"));
    let hrefs = attrs(&index, "href");
    for name in bundled() {
        let page = format!("{name}/index.html");
        assert!(hrefs.contains(&page), "the index links {page}");
        let images = links_resolve(&one.join(&page));
        assert!(images.len() >= 6, "{page} shows the six plots: {images:?}");
        let summary = read_json(&one.join(&name).join("summary.json"));
        let faulty =
            summary["variants"].as_object().unwrap().values().any(|v| !v["faults"].as_array().unwrap().is_empty());
        let throughput = std::fs::read_to_string(one.join(&name).join("throughput.svg")).unwrap();
        let shaded = ["#C6DBEF", "#F4CCCC", "#FFEBB0", "#E0D0EC", "#DDDDDD"].iter().any(|c| throughput.contains(c))
            || COLOURS.iter().any(|c| throughput.contains(&format!("opacity=\"0.6\" fill=\"{c}\"")));
        assert_eq!(shaded, faulty, "{name}: fault windows shaded exactly when the scenario has faults");
    }
    // A kind's own plots: the log broker's lag per group, one series per
    // variant and group that reported the gauge (read off timeseries.csv).
    for name in ["delivery-guarantees", "ordering", "replication-acks", "exactly-once-myth"] {
        let csv = std::fs::read_to_string(one.join(name).join("timeseries.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let index = read_json(&one.join(name).join("plots.json"));
        for (plot, gauge) in [("lag-records", "lag_records."), ("lag-seconds", "lag_seconds.")] {
            let mut series = std::collections::BTreeSet::new();
            for row in csv.lines().skip(1) {
                let cells: Vec<&str> = row.split(',').collect();
                for (h, _) in header.iter().zip(&cells).filter(|(h, c)| h.starts_with(gauge) && !c.is_empty()) {
                    series.insert((cells[0].to_string(), h.to_string()));
                }
            }
            let entry = index
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == plot)
                .unwrap_or_else(|| panic!("{name}: no {plot}"));
            assert!(!series.is_empty(), "{name}: the log broker reports {gauge}*");
            assert_eq!(entry["series"].as_array().unwrap().len(), series.len(), "{name}/{plot}: {series:?}");
            assert!(
                one.join(name).join(format!("{plot}.svg")).is_file()
                    && one.join(name).join(format!("{plot}.png")).is_file()
            );
        }
    }
    let (a, b) = (files(one), files(three));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs between one thread and three");
    }
}

/// Chromium, if this machine has it: `$CHROMIUM`, or one on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `args`; returns (stdout, stderr).
fn headless(chrome: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    let o = Command::new(chrome)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(args)
        .output()
        .expect("run chromium");
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A page that opens each report page in a frame and reports, as JSON in
/// its DOM, every image's decoded size (0 when it failed to decode), and
/// the text each SVG of `SVGS` shows.
const CHECKER: &str = r#"<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
function check(url) {
  return new Promise(res => {
    const f = document.createElement('iframe'); f.width = 1200; f.height = 800; f.src = url;
    f.onload = () => {
      const imgs = [...f.contentDocument.images];
      Promise.all(imgs.map(i => i.decode().then(() => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])
        .catch(e => [i.getAttribute('src'), 0, 0]))).then(r => res({url, images: r}));
    };
    document.body.appendChild(f);
  });
}
function texts(url) {
  return new Promise(res => {
    const f = document.createElement('iframe'); f.width = 960; f.height = 540; f.src = url;
    f.onload = () => res({url, texts: [...f.contentDocument.querySelectorAll('text')].map(t => t.textContent)});
    document.body.appendChild(f);
  });
}
(async () => { const pages = []; for (const p of PAGES) pages.push(await check(p));
  const svgs = []; for (const s of SVGS) svgs.push(await texts(s));
  document.getElementById('out').textContent = JSON.stringify({pages, svgs}); })();
</script></body></html>"#;

#[test]
fn the_report_renders_in_a_real_browser() {
    let Some(chrome) = chromium() else {
        let required = std::env::var_os("ASYNCSIM_REQUIRE_BROWSER").is_some();
        assert!(!required, "ASYNCSIM_REQUIRE_BROWSER is set (.ci/run sets it) but no Chromium was found");
        eprintln!("SKIPPED the browser test: no Chromium here (install Debian's `chromium`, or set CHROMIUM=/path)");
        return;
    };
    let (one, _) = main_job();
    let profile = TempDir::new("chromium-profile");
    let pages: Vec<String> =
        std::iter::once("index.html".to_string()).chain(bundled().iter().map(|n| format!("{n}/index.html"))).collect();
    // No console message of any kind (the pages have no script).
    for page in [&pages[0], &pages[1]] {
        let url = format!("file://{}", one.join(page).display());
        let (dom, log) = headless(&chrome, profile.path(), &["--dump-dom", &url]);
        assert!(dom.contains("</html>"), "{page} loaded: {log}");
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect();
        assert!(console.is_empty(), "{page} logged to the console: {console:?}");
    }
    // Every image of every page decodes, with a non-zero size.
    let checker = one.join("browser-check.html");
    // The causes plot of a scenario that has them: shown, and its legend
    // names each cause the summary counts, as the browser reads the SVG.
    let causes = "delivery-guarantees/causes.svg";
    let script = CHECKER.replace("PAGES", &serde_json::to_string(&pages).unwrap());
    std::fs::write(&checker, script.replace("SVGS", &serde_json::to_string(&[causes]).unwrap())).unwrap();
    let url = format!("file://{}", checker.display());
    let (dom, log) = headless(
        &chrome,
        profile.path(),
        &["--allow-file-access-from-files", "--virtual-time-budget=30000", "--dump-dom", &url],
    );
    let json = &dom[dom.find("<pre id=\"out\">").expect("the checker ran") + 14..dom.find("</pre>").unwrap()];
    let checked: Value =
        serde_json::from_str(&json.replace("&quot;", "\"")).unwrap_or_else(|e| panic!("{e}: {json}\n{log}"));
    let svgs = checked["svgs"].as_array().unwrap();
    let shown: Vec<&str> = svgs[0]["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let summary = read_json(&one.join("delivery-guarantees/summary.json"));
    for key in ["lost_by_cause", "duplicated_by_cause"] {
        for v in summary["variants"].as_object().unwrap().values() {
            for cause in v[key].as_object().unwrap().keys() {
                assert!(shown.iter().any(|t| t.contains(&format!("({cause})"))), "{causes} names {cause}: {shown:?}");
            }
        }
    }
    for cause in ["network_loss", "commit_before_process"] {
        assert!(shown.iter().any(|t| t.contains(cause)), "delivery-guarantees loses by {cause}: {shown:?}");
    }
    let checked = &checked["pages"];
    assert_eq!(checked.as_array().unwrap().len(), pages.len());
    let dg = checked.as_array().unwrap().iter().find(|p| p["url"] == "delivery-guarantees/index.html").unwrap();
    let plot = dg["images"].as_array().unwrap().iter().find(|i| i[0] == "causes.svg");
    assert!(plot.is_some_and(|i| i[1].as_u64() > Some(0)), "the causes plot is shown: {dg}");
    for page in checked.as_array().unwrap() {
        for img in page["images"].as_array().unwrap() {
            assert!(
                img[1].as_u64().unwrap() > 0 && img[2].as_u64().unwrap() > 0,
                "{}: {img} did not decode",
                page["url"]
            );
        }
    }
    std::fs::remove_file(&checker).unwrap();
    // A screenshot of a scenario page is not blank: many colours, and ink.
    let shot = profile.path().join("shot.png");
    let page = format!("file://{}", one.join("network-faults/index.html").display());
    headless(&chrome, profile.path(), &[&format!("--screenshot={}", shot.display()), "--window-size=1280,2400", &page]);
    let img = image::open(&shot).expect("a screenshot").to_rgb8();
    let ink = img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count() as f64 / img.pixels().len() as f64;
    let colours: std::collections::BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(ink > 0.02 && colours.len() > 50, "the screenshot is blank: {ink:.3} ink, {} colours", colours.len());
}

/// A cluster's health plot: its four gauges per variant, and a level line
/// named after each alarm the scenario sets on one of them; a single-node
/// scenario has no such plot.
#[test]
fn a_cluster_plots_its_health_with_the_scenarios_alarm_thresholds() {
    let (one, _) = main_job();
    let text = std::fs::read_to_string(repo().join("scenarios/kafka-partition.toml")).unwrap();
    let scenario: toml::Value = toml::from_str(&text).unwrap();
    let alarms = scenario["alarms"].as_array().unwrap();
    let svg = std::fs::read_to_string(one.join("kafka-partition/cluster-health.svg")).unwrap();
    for a in alarms {
        let gauge = a["gauge"].as_str().unwrap();
        let name = a.get("name").and_then(|n| n.as_str()).unwrap_or(gauge);
        let above = a["above"].as_integer().unwrap();
        let label = format!("alarm {name}: {gauge} &gt; {above}");
        assert!(svg.contains(&label), "cluster-health.svg names the alarm: {label}");
    }
    let index = read_json(&one.join("kafka-partition/plots.json"));
    let entry = index.as_array().unwrap().iter().find(|p| p["name"] == "cluster-health").expect("a health plot");
    let variants = read_json(&one.join("kafka-partition/summary.json"))["variants"].as_object().unwrap().len();
    assert_eq!(entry["series"].as_array().unwrap().len(), 4 * variants, "four gauges per variant");
    assert!(!one.join("delivery-guarantees/cluster-health.svg").exists(), "a single node has no cluster");
}

/// Text escaped as the report escapes it.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The guide's chapters, read off chapters.toml: (number, file from the
/// repository's root, title, scenarios).
fn guide_chapters() -> Vec<(usize, String, String, Vec<String>)> {
    let text = std::fs::read_to_string(repo().join("docs/guide/chapters.toml")).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    let chapters = parsed["chapter"].as_array().unwrap().iter().enumerate();
    chapters
        .map(|(i, c)| {
            let file = format!("docs/guide/{:02}-{}.md", i + 1, c["slug"].as_str().unwrap());
            let scenarios = c["scenarios"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string());
            (i + 1, file, c["title"].as_str().unwrap().to_string(), scenarios.collect())
        })
        .collect()
}

/// The target of the link whose text is `text` in `html`.
fn link_to(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!("\">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&amp;", "&"))
}

/// Checks that `href`, from the folder `dir`, names the chapter `file`,
/// and leads to it when the repository holds it (a chapter not yet
/// written is linked by its path from the repository's root;
/// tests/guide.rs checks that every chapter exists).
fn leads_to_chapter(dir: &Path, href: &str, file: &str) {
    assert!(href.ends_with(file), "{}: the link {href} names {file}", dir.display());
    if repo().join(file).is_file() {
        let target = dir.join(href);
        assert!(target.is_file(), "{}: the chapter link {href} leads nowhere", dir.display());
        assert_eq!(target.canonicalize().unwrap(), repo().join(file).canonicalize().unwrap(), "{href}");
    } else {
        assert_eq!(href, file, "a chapter not written yet: its path from the repository's root");
    }
}

#[test]
fn the_pages_link_their_chapter_and_the_index_groups_by_chapter() {
    let (one, _) = main_job();
    let chapters = guide_chapters();
    let index = std::fs::read_to_string(one.join("index.html")).unwrap();
    let mut at = 0;
    for (n, file, title, scenarios) in &chapters {
        let text = esc(&format!("Chapter {n:02}: {title}"));
        let heading = index[at..].find(&format!(">{text}</a></h2>")).map(|i| i + at);
        let heading = heading.unwrap_or_else(|| panic!("the index has a heading for {text}, after the chapter before"));
        let next = index[heading..].find("<h2").map_or(index.len(), |i| i + heading);
        leads_to_chapter(one, &link_to(&index[at..next], &text).unwrap(), file);
        for s in scenarios {
            assert!(index[heading..next].contains(&format!("href=\"{s}/index.html\"")), "{s} listed under {text}");
            let page = std::fs::read_to_string(one.join(s).join("index.html")).unwrap();
            assert!(page.contains("Learn the concept: <a class=\"chapter\" href="), "{s}: a chapter link");
            let href = link_to(&page, &text).unwrap_or_else(|| panic!("{s}'s page links {text}"));
            leads_to_chapter(&one.join(s), &href, file);
        }
        at = next;
    }
    assert!(!index.contains("Other scenarios"), "every bundled scenario is in a chapter");
}

#[test]
fn the_causes_plot_splits_losses_and_duplicates_by_cause_in_plain_words() {
    let (one, _) = main_job();
    let mut drawn = 0;
    for name in bundled() {
        let dir = one.join(&name);
        let summary = read_json(&dir.join("summary.json"));
        let mut causes: Vec<(&str, String)> = Vec::new();
        for (outcome, key) in [("lost", "lost_by_cause"), ("duplicated", "duplicated_by_cause")] {
            let mut names = std::collections::BTreeSet::new();
            for v in summary["variants"].as_object().unwrap().values() {
                names.extend(v[key].as_object().unwrap().iter().filter(|(_, n)| n.as_u64() > Some(0)).map(|(c, _)| c));
            }
            causes.extend(names.into_iter().map(|c| (outcome, c.clone())));
        }
        let index = read_json(&dir.join("plots.json"));
        let entry = index.as_array().unwrap().iter().find(|p| p["name"] == "causes");
        let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
        if causes.is_empty() {
            assert!(entry.is_none() && !dir.join("causes.svg").exists(), "{name}: nothing to explain, no plot");
            assert!(page.contains("No variant lost or duplicated a message"), "{name}: the page says why");
            continue;
        }
        drawn += 1;
        let entry = entry.unwrap_or_else(|| panic!("{name}: a causes plot in plots.json"));
        assert!(page.contains("src=\"causes.svg\""), "{name}: the page shows the causes plot");
        let series: Vec<&str> = entry["series"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(series.len(), causes.len(), "{name}: one legend entry per cause: {series:?}");
        let svg = std::fs::read_to_string(dir.join("causes.svg")).unwrap();
        for (outcome, cause) in &causes {
            let label =
                series.iter().find(|s| s.starts_with(&format!("{outcome}: ")) && s.ends_with(&format!(" ({cause})")));
            let label = label.unwrap_or_else(|| panic!("{name}: the legend names {outcome} by {cause}: {series:?}"));
            let words = &label[outcome.len() + 2..label.len() - cause.len() - 3];
            assert!(words.contains(' ') && !words.contains('_'), "{name}: {cause} in plain words: {words}");
            assert!(svg.contains(&format!("({cause})")), "{name}: causes.svg's legend names {cause}");
        }
        assert_eq!(png_size(&std::fs::read(dir.join("causes.png")).unwrap()), (960, 540));
    }
    assert!(drawn >= 10, "most bundled scenarios lose or duplicate something: {drawn}");
}
