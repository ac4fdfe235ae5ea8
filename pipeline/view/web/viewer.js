// The splat viewer page: SparkJS on three.js where WebGL2 exists, server-rendered JPEGs where
// it does not. Readiness for tests and tools: document.body.dataset.state becomes "ready" once
// the first frame of a loaded splat is drawn, with data-splats = the number of splats loaded.
// The scene JSON (data-config.scene) says what to load, where the camera starts (the preview
// orbit's first pose, OpenGL camera-to-world = three.js's convention) and where events come from.

const body = document.body;
const config = JSON.parse(body.dataset.config);
const $ = (id) => document.getElementById(id);

function setState(state, splats) {
  if (splats !== undefined) body.dataset.splats = String(splats);
  body.dataset.state = state;
  // For tools and the benchmark: milliseconds from navigation start to the first drawn frame.
  if (state === "ready" && window.firstReadyMs === undefined) window.firstReadyMs = performance.now();
}

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

function hasWebGL2() {
  if (new URLSearchParams(location.search).has("fallback")) return false;
  try {
    return !!document.createElement("canvas").getContext("webgl2");
  } catch {
    return false;
  }
}

// ---- panel: job state, numbers, curve, previews, downloads ----

const history = [];

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "";
  return typeof value === "number" ? Number(value.toPrecision(digits)).toString() : String(value);
}

function showNumbers(rows) {
  const list = $("numbers");
  list.replaceChildren();
  for (const [name, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function showJob(job) {
  if (!job) return;
  const p = job.progress || {};
  $("state").textContent = job.state;
  $("stage-name").textContent = p.pipeline_stage || p.stage || "";
  $("progress").value = p.progress ?? p.pct ?? 0;
  const m = job.metrics || {};
  showNumbers([
    ["step", p.step !== undefined ? `${p.step} / ${p.total}` : undefined],
    ["loss", fmt(p.loss)],
    ["Gaussians", p.gaussians],
    ["ETA", p.eta_s !== undefined && p.eta_s !== null ? `${Math.round(p.eta_s)} s` : undefined],
    ["held-out PSNR", m.psnr !== undefined ? `${fmt(m.psnr, 4)} dB` : undefined],
    ["held-out SSIM", fmt(m.ssim)],
    ["error", job.error],
  ]);
  if (typeof p.step === "number" && typeof p.loss === "number") {
    if (!history.length || history[history.length - 1].step < p.step) {
      history.push({ step: p.step, loss: p.loss, gaussians: p.gaussians || 0 });
      drawCurve();
    }
  }
}

function drawCurve() {
  const canvas = $("curve");
  canvas.hidden = history.length < 2;
  if (canvas.hidden) return;
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  const steps = history.map((r) => r.step);
  const x = (s) => ((s - steps[0]) / Math.max(steps[steps.length - 1] - steps[0], 1)) * (w - 4) + 2;
  const line = (key, colour) => {
    const values = history.map((r) => r[key]);
    const lo = Math.min(...values), hi = Math.max(...values);
    ctx.strokeStyle = colour;
    ctx.beginPath();
    history.forEach((r, i) => {
      const y = h - 2 - ((r[key] - lo) / Math.max(hi - lo, 1e-12)) * (h - 16);
      i ? ctx.lineTo(x(r.step), y) : ctx.moveTo(x(r.step), y);
    });
    ctx.stroke();
  };
  line("loss", "#f96");
  line("gaussians", "#6cf");
  ctx.fillStyle = "#f96";
  ctx.fillText("loss", 4, 10);
  ctx.fillStyle = "#6cf";
  ctx.fillText("Gaussians", 40, 10);
}

function showFiles(scene) {
  const list = $("downloads");
  list.replaceChildren();
  for (const file of scene.files || []) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = file.url;
    a.download = file.name;
    a.textContent = `${file.name} (${(file.size / 1e6).toFixed(2)} MB)`;
    li.append(a);
    list.append(li);
  }
  const box = $("previews");
  box.replaceChildren();
  const p = scene.previews || {};
  if (p.video) {
    const video = document.createElement("video");
    Object.assign(video, { src: p.video, controls: true, loop: true, muted: true, preload: "metadata" });
    box.append(video);
  }
  for (const key of ["top", "angle"]) {
    if (!p[key]) continue;
    const img = document.createElement("img");
    Object.assign(img, { src: p[key], alt: `preview ${key}` });
    box.append(img);
  }
}

// ---- the 3D view (SparkJS) ----

async function startSpark(scene) {
  const THREE = await import("three");
  const { OrbitControls } = await import("three/addons/controls/OrbitControls.js");
  const { SparkRenderer, SplatMesh } = await import("@sparkjsdev/spark");
  const canvas = $("view");
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  const bg = scene.background;
  renderer.setClearColor(new THREE.Color().setRGB(bg[0], bg[1], bg[2], THREE.SRGBColorSpace), 1);
  const world = new THREE.Scene();
  world.add(new SparkRenderer({ renderer }));
  const cam = scene.camera;
  const camera = new THREE.PerspectiveCamera(cam.vfov_deg, 1, cam.distance * 0.01, cam.distance * 100);
  const controls = new OrbitControls(camera, canvas);
  let mesh = null;
  let loads = 0;

  function resize() {
    const { clientWidth: w, clientHeight: h } = canvas;
    if (canvas.width !== Math.round(w * renderer.getPixelRatio()) || camera.aspect !== w / h) {
      renderer.setSize(w, h, false);
      camera.aspect = w / h;
      camera.updateProjectionMatrix();
    }
  }

  function home(c) {
    const m = new THREE.Matrix4().set(...c.c2w);
    m.decompose(camera.position, camera.quaternion, new THREE.Vector3());
    camera.up.set(...c.up);
    controls.target.set(...c.target);
    controls.update();
  }

  async function load(splat) {
    const url = splat.version ? `${splat.url}?v=${encodeURIComponent(splat.version)}` : splat.url;
    const next = new SplatMesh({ url, fileType: splat.file_type });
    await next.initialized;
    world.add(next);
    if (mesh) {
      world.remove(mesh);
      mesh.dispose();
    }
    mesh = next;
    loads += 1;
    const count = next.packedSplats ? next.packedSplats.numSplats : (next.numSplats ?? 0);
    // Two frames: the first uploads and sorts, the second draws the sorted splats.
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    renderer.render(world, camera);
    body.dataset.loads = String(loads);
    body.dataset.live = splat.live ? "true" : "false";
    setState("ready", count);
  }

  home(cam);
  resize();
  renderer.setAnimationLoop(() => {
    resize();
    controls.update();
    renderer.render(world, camera);
  });
  window.viewer = { THREE, renderer, camera, controls, world, home: () => home(cam), load };
  await load(scene.splat);
  return load;
}

// ---- the fallback view (server-rendered JPEGs) ----

async function startFallback(scene) {
  const img = $("fallback");
  $("view").hidden = true;
  img.hidden = false;
  const cam = scene.camera;
  const pose = { yaw: 0, pitch: cam.pitch_deg, distance: cam.distance };
  let version = "";
  let pending = null;

  function url() {
    const rect = img.getBoundingClientRect();
    let w = Math.max(16, Math.round(rect.width)), h = Math.max(16, Math.round(rect.height));
    const scale = Math.min(1, Math.sqrt((1920 * 1080) / (w * h)));
    w = Math.floor(w * scale);
    h = Math.floor(h * scale);
    const q = new URLSearchParams({
      yaw: pose.yaw.toFixed(2), pitch: pose.pitch.toFixed(2), distance: pose.distance.toPrecision(6),
      width: String(w), height: String(h), v: version,
    });
    return `${scene.render_url}?${q}`;
  }

  function refresh() {
    const next = url();
    if (pending === next) return;
    pending = next;
    img.src = next;
  }

  img.addEventListener("load", () => {
    body.dataset.live = scene.splat && scene.splat.live ? "true" : "false";
    setState("ready", scene.splat ? scene.splat.count : 0);
  });
  img.addEventListener("error", () => showMessage("the server could not render this view"));
  let drag = null;
  img.draggable = false;
  img.addEventListener("dragstart", (e) => e.preventDefault());
  img.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    drag = { x: e.clientX, y: e.clientY, yaw: pose.yaw, pitch: pose.pitch };
    img.setPointerCapture(e.pointerId);
  });
  img.addEventListener("pointermove", (e) => {
    if (!drag) return;
    pose.yaw = drag.yaw - (e.clientX - drag.x) * 0.4;
    pose.pitch = Math.max(-89, Math.min(89, drag.pitch + (e.clientY - drag.y) * 0.4));
  });
  img.addEventListener("pointerup", () => {
    drag = null;
    refresh();
  });
  img.addEventListener("wheel", (e) => {
    e.preventDefault();
    pose.distance *= Math.exp(e.deltaY * 0.001);
    refresh();
  });
  refresh();
  window.viewer = { pose, refresh, fallback: true };
  return async (splat) => {
    version = String(splat.version ?? Date.now());
    scene.splat = splat;
    refresh();
  };
}

// ---- live updates (Server-Sent Events) ----

let reload = null;

async function fetchScene() {
  const response = await fetch(config.scene, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${config.scene}: HTTP ${response.status}`);
  return response.json();
}

async function show(scene, splat) {
  showMessage("");
  if (reload) return reload(splat);
  scene.splat = splat;
  reload = await (hasWebGL2() ? startSpark(scene) : startFallback(scene));
}

function follow(scene) {
  if (!scene.events_url) return;
  const source = new EventSource(scene.events_url);
  source.addEventListener("job", (e) => {
    scene.job = JSON.parse(e.data);
    showJob(scene.job);
  });
  source.addEventListener("snapshot", async (e) => {
    const snap = JSON.parse(e.data);
    if (!reload) Object.assign(scene, await fetchScene());
    const live = { url: snap.url, file_type: "splat", count: snap.gaussians, live: true };
    await show(scene, { ...live, version: e.lastEventId });
  });
  source.addEventListener("end", async (e) => {
    source.close();
    scene.job = JSON.parse(e.data);
    showJob(scene.job);
    const fresh = await fetchScene();
    showFiles(fresh);
    if (fresh.splat) {
      if (!reload) scene.camera = fresh.camera;
      await show(scene, fresh.splat);
    }
  });
}

async function main() {
  const scene = await fetchScene();
  showJob(scene.job);
  showFiles(scene);
  if (scene.splat) await show(scene, scene.splat);
  else {
    showMessage(scene.message || "no splat yet");
    setState("empty", 0);
  }
  follow(scene);
}

main().catch((err) => {
  console.error(err);
  showMessage(String(err.message || err));
  setState("error");
});
