// The "Child runs" tab of a task instance page: the child runs its task triggered, item by item.
//
// Airflow's UI imports this ES module and renders globalThis.AirflowPlugin with {dagId, runId, taskId,
// mapIndex}. React and Chakra UI come from the UI itself (globalThis.React, globalThis.ChakraUI), so the
// module is plain JavaScript, written without JSX: nothing to build, nothing to install.
const React = globalThis.React;
const Chakra = globalThis.ChakraUI || {};
const h = React.createElement;

// While the parent runs, the tab asks again this often.
const REFRESH_MS = 5000;
const PAGE = 100;
const COUNTED = [
  ["success", "succeeded", "green"],
  ["failed", "failed", "red"],
  ["running", "running", "cyan"],
  ["queued", "queued", "gray"],
  ["not_started", "not started", "gray"],
];
const NOT_INSTALLED =
  "The Child runs view is not available here: this API server does not have the airflow-durable-trigger package installed.";
const STATE_COLOURS = { success: "green", failed: "red", running: "cyan", queued: "gray", not_started: "gray" };

function url(path) {
  return new URL(path, document.baseURI).href;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

function when(value) {
  return value ? new Date(value).toLocaleString() : "";
}

// A Chakra component if the UI has it, else a plain element: the tab stays readable either way.
function part(name, fallback) {
  return Chakra[name] || fallback;
}
const Box = part("Box", "div");
const Text = part("Text", "p");
const Badge = part("Badge", "span");
const Button = part("Button", "button");

function Line(props) {
  return h(Text, { "data-testid": "child-runs-message", fontSize: "sm", py: 2 }, props.children);
}

function Counts(props) {
  return h(
    Box,
    { "data-testid": "child-runs-counts", display: "flex", gap: 3, flexWrap: "wrap", py: 2 },
    COUNTED.map(([state, label, colour]) =>
      h(
        Badge,
        { key: state, "data-state": state, "data-count": props.counts[state] || 0, colorPalette: colour },
        `${label}: ${props.counts[state] || 0}`,
      ),
    ),
  );
}

function Shortened(props) {
  const [open, setOpen] = React.useState(false);
  if (props.short === null || props.short === undefined) return "";
  const whole = JSON.stringify(props.value, null, 2);
  if (whole === props.short || !open) {
    return h(
      "span",
      {
        title: whole,
        style: { cursor: whole === props.short ? "default" : "pointer", fontFamily: "monospace" },
        onClick: () => setOpen(true),
      },
      props.short,
    );
  }
  return h("pre", { style: { whiteSpace: "pre-wrap", margin: 0 }, onClick: () => setOpen(false) }, whole);
}

function Row(props) {
  const r = props.row;
  const href = url(`dags/${encodeURIComponent(props.dagId)}/runs/${encodeURIComponent(r.run_id)}`);
  const cells = [
    r.index,
    h(Shortened, { value: r.conf, short: r.conf_short }),
    r.state === "not_started"
      ? r.run_id
      : h("a", { href, "data-testid": "child-run-link", style: { textDecoration: "underline" } }, r.run_id),
    h(Badge, { colorPalette: STATE_COLOURS[r.state] || "gray" }, r.state.replace("_", " ")),
    when(r.start_date),
    when(r.end_date),
    seconds(r.duration),
    r.try_number === null ? "" : r.try_number,
  ];
  if (props.withResults) cells.push(h(Shortened, { value: r.result, short: r.result_short }));
  return h(
    "tr",
    { "data-testid": "child-run-row", "data-index": r.index, "data-state": r.state },
    cells.map((cell, i) => h("td", { key: i, style: { padding: "4px 8px", verticalAlign: "top" } }, cell)),
  );
}

function Rows(props) {
  const withResults = props.rows.some((r) => r.result_short !== null);
  const heads = ["#", "conf", "run id", "state", "start", "end", "duration", "parent try"];
  if (withResults) heads.push("result");
  return h(
    "table",
    { "data-testid": "child-runs-table", style: { borderCollapse: "collapse", width: "100%", fontSize: "0.875rem" } },
    h(
      "thead",
      null,
      h("tr", null, heads.map((head) => h("th", { key: head, style: { textAlign: "left", padding: "4px 8px" } }, head))),
    ),
    h(
      "tbody",
      null,
      props.rows.map((r) => h(Row, { key: r.index, row: r, dagId: props.dagId, withResults })),
    ),
  );
}

function ChildRuns(props) {
  const [offset, setOffset] = React.useState(0);
  const [answer, setAnswer] = React.useState(null);
  const [problem, setProblem] = React.useState(null);
  const mapIndex = props.mapIndex === undefined || props.mapIndex === null ? -1 : props.mapIndex;

  React.useEffect(() => {
    let stopped = false;
    let timer = null;
    async function load() {
      const query = new URLSearchParams({
        dag_id: props.dagId,
        run_id: props.runId,
        task_id: props.taskId,
        map_index: String(mapIndex),
        offset: String(offset),
        limit: String(PAGE),
      });
      let next = null;
      try {
        const response = await fetch(url(`standard-ext/child-runs?${query}`), { credentials: "same-origin" });
        const json = (response.headers.get("content-type") || "").includes("json");
        const body = json ? await response.json() : null;
        // Without the package, the API server has no such route: Airflow answers "Not Found", or its UI's page.
        const missing = !json || (response.status === 404 && body.detail === "Not Found");
        if (missing) {
          setProblem(NOT_INSTALLED);
        } else if (response.status === 401 || response.status === 403) {
          setProblem("You may not read this task instance's child runs.");
        } else if (!response.ok) {
          setProblem(`The Child runs view could not be loaded (HTTP ${response.status}): ${body.detail}`);
        } else {
          setAnswer(body);
          setProblem(null);
          if (["running", "deferred", "queued", "scheduled", "up_for_retry", "restarting"].includes(body.parent.state)) {
            next = REFRESH_MS;
          }
        }
      } catch (error) {
        setProblem(`The Child runs view could not be loaded: ${error}`);
      }
      if (!stopped && next !== null) timer = setTimeout(load, next);
    }
    load();
    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    };
  }, [props.dagId, props.runId, props.taskId, mapIndex, offset]);

  if (problem !== null) return h(Line, null, problem);
  if (answer === null) return h(Line, null, "Loading the child runs…");
  if (answer.kind === "other" || answer.kind === "never_triggered" || answer.withheld) {
    return h(Line, null, answer.message);
  }
  const pages = [];
  if (answer.total > answer.limit) {
    pages.push(
      h(
        Box,
        { key: "pages", display: "flex", gap: 2, alignItems: "center", py: 2 },
        h(Button, { size: "xs", disabled: offset === 0, onClick: () => setOffset(Math.max(0, offset - PAGE)) }, "Previous"),
        h(Text, { fontSize: "sm" }, `${offset + 1}–${Math.min(offset + PAGE, answer.total)} of ${answer.total}`),
        h(Button, { size: "xs", disabled: offset + PAGE >= answer.total, onClick: () => setOffset(offset + PAGE) }, "Next"),
      ),
    );
  }
  return h(
    Box,
    { "data-testid": "child-runs", p: 2 },
    h(Text, { fontSize: "sm" }, `${answer.total} child run(s) of Dag ${answer.child_dag_id}`),
    h(Counts, { counts: answer.counts }),
    ...pages,
    h(Rows, { rows: answer.rows, dagId: answer.child_dag_id }),
  );
}

globalThis.AirflowPlugin = ChildRuns;
export default ChildRuns;
