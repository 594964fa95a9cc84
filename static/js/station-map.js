/* Station map: Leaflet over the stations passed in a json_script block (no inline script).
   Without a tile server the map shows the stations' positions on a plain background;
   without JavaScript the list beside it says everything the map does. */
(function () {
  "use strict";
  var box = document.getElementById("station-map");
  if (!box || !window.L) { return; }
  var source = document.getElementById(box.dataset.config);
  if (!source) { return; }
  var config;
  try { config = JSON.parse(source.textContent); } catch (e) { return; }
  var stations = config.stations || [];

  box.textContent = "";
  box.classList.add("station-map--ready");
  var map = L.map(box, { scrollWheelZoom: false });
  if (config.tiles) {
    L.tileLayer(config.tiles, { maxZoom: 18, attribution: config.attribution || "" }).addTo(map);
  }

  var points = [];
  stations.forEach(function (s) {
    var point = [s.lat, s.lng];
    points.push(point);
    // A circle marker needs no image, so it shows on a blank map as well.
    var marker = L.circleMarker(point, { radius: 8, weight: 2, color: "#b3122a", fillOpacity: 0.8 });
    var link = document.createElement("a");
    link.href = s.url;
    link.textContent = s.name;
    var popup = document.createElement("div");
    popup.appendChild(link);
    var address = document.createElement("div");
    address.textContent = s.address;
    popup.appendChild(address);
    marker.bindPopup(popup);
    marker.bindTooltip(s.name);
    marker.addTo(map);
  });

  if (points.length > 1) {
    map.fitBounds(points, { padding: [24, 24] });
  } else if (points.length === 1) {
    map.setView(points[0], 14);
  } else {
    map.setView(config.centre || [23.13, 113.26], 10);
  }
  box.dataset.markers = String(points.length);
})();
