// CloudFront Function (cloudfront-js-2.0, viewer request): serves each variant in the most compact
// format the browser accepts among those that exist for it. The image-compressor writes a variant's
// WebP and AVIF only when each is smaller than its JPEG, so which exist differs from one variant to
// the next; the manifest says so in the URL it hands out for the JPEG:
// `/<variant>/<key>.jpg?formats=avif.webp` (the formats written beside it, most compact first).
// Such a request is rewritten to the same key in AVIF, else WebP, when the `Accept` header names that
// type and the URL says it exists; the query string is then dropped. The format chosen is part of the
// URI, so the cache key (the URI alone) holds one normalised value per format instead of every
// distinct `Accept` header, and a JPEG URL without `formats` is never rewritten: no request is ever
// sent to an object that was not written. Other requests (manifests, explicit .webp or .avif URLs)
// pass unchanged. template.yaml holds a copy of this file
// (tests/tests/image-compressor/delivery.rs checks it).

// Most compact first: the first one the browser accepts and the variant has wins.
var PREFERENCE = [
  { extension: 'avif', type: 'image/avif' },
  { extension: 'webp', type: 'image/webp' }
];

// The media types `accept` names with a non-zero quality (`image/*` and `*/*` name none: browsers
// send them without decoding every image format).
function acceptedTypes(accept) {
  var types = {};
  var ranges = String(accept || '').toLowerCase().split(',');
  for (var i = 0; i < ranges.length; i++) {
    var params = ranges[i].split(';');
    var type = params[0].trim();
    var refused = false;
    for (var j = 1; j < params.length; j++) {
      var param = params[j].trim();
      if (param.indexOf('q=') === 0 && !(parseFloat(param.slice(2)) > 0)) {
        refused = true;
      }
    }
    if (type && !refused) {
      types[type] = true;
    }
  }
  return types;
}

// The formats a variant has beside its JPEG, from the URL's `formats` (like `avif.webp`).
function availableFormats(formats) {
  var available = {};
  var names = String(formats || '').toLowerCase().split('.');
  for (var i = 0; i < names.length; i++) {
    var name = names[i].trim();
    if (name) {
      available[name] = true;
    }
  }
  return available;
}

// The extension to serve for a JPEG variant's request: `avif`, `webp` or `jpg`.
function selectFormat(accept, formats) {
  var accepted = acceptedTypes(accept);
  var available = availableFormats(formats);
  for (var i = 0; i < PREFERENCE.length; i++) {
    var candidate = PREFERENCE[i];
    if (available[candidate.extension] && accepted[candidate.type]) {
      return candidate.extension;
    }
  }
  return 'jpg';
}

// Whether `uri` names a variant's JPEG: `/<variant>/<key>.jpg` or `/<variant>.sha256/<hex>.jpg`.
function isVariantJpeg(uri) {
  if (uri.slice(-4) !== '.jpg') {
    return false;
  }
  var slash = uri.indexOf('/', 1);
  if (slash < 2 || slash + 1 >= uri.length - 4) {
    return false;
  }
  var prefix = uri.slice(1, slash);
  return prefix !== 'manifest' && prefix !== 'manifest.sha256';
}

// The `formats` parameter of the query string, when given once.
function formatsParameter(querystring) {
  var parameter = querystring && querystring.formats;
  if (!parameter || parameter.multiValue || typeof parameter.value !== 'string') {
    return '';
  }
  return parameter.value;
}

// The request to send on: a variant's JPEG rewritten to the chosen format, without a query string
// (the origin and the cache key need none).
function rewrite(request) {
  var uri = request.uri;
  if (!isVariantJpeg(uri)) {
    return request;
  }
  var accept = request.headers && request.headers.accept ? request.headers.accept.value : '';
  var extension = selectFormat(accept, formatsParameter(request.querystring));
  if (extension !== 'jpg') {
    request.uri = uri.slice(0, -3) + extension;
  }
  request.querystring = {};
  return request;
}

function handler(event) {
  return rewrite(event.request);
}
