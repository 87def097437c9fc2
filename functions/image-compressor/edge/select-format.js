// CloudFront Function (cloudfront-js-2.0, viewer request): serves each variant in the most compact
// format the browser accepts. A request for a variant's JPEG (`/<variant>/<key>.jpg`) is rewritten
// to the same key in AVIF, else WebP, when the `Accept` header names that type and the stack writes
// that format for every variant (FORMATS, filled in by template.yaml). The format chosen is then
// part of the URI, so the cache key holds one normalised value per format instead of every distinct
// `Accept` header. Other requests (manifests, explicit .webp or .avif URLs) pass unchanged.
// template.yaml inlines this file with !Sub, which fills in FORMATS: it holds no other placeholder.

var FORMATS = '${Formats}';

// Most compact first: the first one the browser accepts and the stack writes wins.
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

// The formats the stack writes for every variant, from a list like `avif,webp`.
function enabledFormats(formats) {
  var enabled = {};
  var names = String(formats || '').toLowerCase().split(',');
  for (var i = 0; i < names.length; i++) {
    var name = names[i].trim();
    if (name) {
      enabled[name] = true;
    }
  }
  return enabled;
}

// The extension to serve for a JPEG variant's request: `avif`, `webp` or `jpg`.
function selectFormat(accept, formats) {
  var accepted = acceptedTypes(accept);
  var enabled = enabledFormats(formats);
  for (var i = 0; i < PREFERENCE.length; i++) {
    var candidate = PREFERENCE[i];
    if (enabled[candidate.extension] && accepted[candidate.type]) {
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

// The request to send on: its URI rewritten to the chosen format.
function rewrite(request, formats) {
  var uri = request.uri;
  if (!isVariantJpeg(uri)) {
    return request;
  }
  var accept = request.headers && request.headers.accept ? request.headers.accept.value : '';
  var extension = selectFormat(accept, formats);
  if (extension !== 'jpg') {
    request.uri = uri.slice(0, -3) + extension;
  }
  return request;
}

function handler(event) {
  return rewrite(event.request, FORMATS);
}
