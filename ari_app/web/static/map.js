// The map of the console and of the agencies' page: the kecamatan drawn from the plan's own
// GeoJSON (no tiles, nothing from the internet), positions as dots with their circles.
// locations: [{latitude, longitude, radius_m, source, description}].
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function drawKecamatanMap(svg, boundaries, locations) {
  svg.replaceChildren();
  if (!boundaries) return;
  const rings = [];
  for (const f of boundaries.features) {
    const g = f.geometry;
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    for (const poly of polys) rings.push({ name: f.properties.kecamatan || f.properties.name, ring: poly[0] });
  }
  const all = rings.flatMap((r) => r.ring);
  const lons = all.map((p) => p[0]), lats = all.map((p) => p[1]);
  const minLon = Math.min(...lons), maxLon = Math.max(...lons), minLat = Math.min(...lats), maxLat = Math.max(...lats);
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const scale = 580 / Math.max((maxLon - minLon) * k, maxLat - minLat);
  const x = (lon) => 10 + (lon - minLon) * k * scale;
  const y = (lat) => 10 + (maxLat - lat) * scale;
  for (const r of rings) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", "M" + r.ring.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("L") + "Z");
    const title = document.createElementNS(SVG, "title");
    title.textContent = r.name;
    path.appendChild(title);
    svg.appendChild(path);
  }
  for (const l of locations) {
    if (l.latitude === null || l.longitude === null) continue;
    const cx = x(l.longitude), cy = y(l.latitude);
    const area = document.createElementNS(SVG, "circle");
    area.setAttribute("class", "area");
    area.setAttribute("cx", cx); area.setAttribute("cy", cy);
    area.setAttribute("r", Math.max(3, ((l.radius_m || 0) / 111320) * scale));
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("class", "dot");
    dot.setAttribute("cx", cx); dot.setAttribute("cy", cy); dot.setAttribute("r", 3);
    dot.dataset.source = l.source;
    const title = document.createElementNS(SVG, "title");
    title.textContent = l.description;
    dot.appendChild(title);
    svg.append(area, dot);
  }
}
