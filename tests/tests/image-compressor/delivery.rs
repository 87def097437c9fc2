//! template.yaml's delivery of the variants: a CloudFront distribution in front of the private
//! variants bucket through origin access control, HTTPS only, compressed, with security headers, a
//! cache key without `Accept` and TTLs that honour the variants' `Cache-Control`, and the edge
//! function that picks the format, deployed from its own file.

use integration_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    let r = &t["Resources"][id];
    assert!(!r.is_null(), "template.yaml has no {id}");
    r
}

/// `!Tag value` → ("Tag", value).
fn tagged(v: &Value) -> (String, &Value) {
    match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        ),
        other => panic!("{other:?} is not a tagged CloudFormation value"),
    }
}

/// `!Ref X` / `!GetAtt X.Y` → "Ref X" / "GetAtt X.Y".
fn reference(v: &Value) -> String {
    let (tag, value) = tagged(v);
    format!("{tag} {}", value.as_str().unwrap_or_default())
}

fn distribution(t: &Value) -> &Value {
    let d = resource(t, "VariantsDistribution");
    assert_eq!(d["Type"], "AWS::CloudFront::Distribution");
    &d["Properties"]["DistributionConfig"]
}

#[test]
fn the_bucket_stays_private_and_is_read_only_by_the_distribution_through_origin_access_control() {
    let t = template();
    let config = distribution(&t);
    let origins = config["Origins"].as_sequence().unwrap();
    assert_eq!(origins.len(), 1);
    let origin = &origins[0];
    assert_eq!(
        reference(&origin["DomainName"]),
        "GetAtt DestinationBucket.RegionalDomainName"
    );
    assert_eq!(
        reference(&origin["OriginAccessControlId"]),
        "GetAtt VariantsOriginAccessControl.Id"
    );
    // An empty legacy identity: access is by the OAC alone.
    assert_eq!(origin["S3OriginConfig"]["OriginAccessIdentity"], "");
    let oac =
        &resource(&t, "VariantsOriginAccessControl")["Properties"]["OriginAccessControlConfig"];
    assert_eq!(oac["OriginAccessControlOriginType"], "s3");
    assert_eq!(oac["SigningBehavior"], "always");
    assert_eq!(oac["SigningProtocol"], "sigv4");

    let bucket = &resource(&t, "DestinationBucket")["Properties"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            bucket["PublicAccessBlockConfiguration"][setting], true,
            "{setting}"
        );
    }
    let policy = &resource(&t, "DestinationBucketPolicy")["Properties"];
    assert_eq!(reference(&policy["Bucket"]), "Ref DestinationBucket");
    let allows: Vec<&Value> = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(
        allows.len(),
        1,
        "only the distribution is let in: {allows:?}"
    );
    let allow = allows[0];
    assert_eq!(allow["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(
        allow["Action"], "s3:GetObject",
        "reads only, and no listing"
    );
    let (tag, resource_arn) = tagged(&allow["Resource"]);
    assert_eq!(
        (tag.as_str(), resource_arn.as_str()),
        ("Sub", Some("${DestinationBucket.Arn}/*"))
    );
    let (tag, source) = tagged(&allow["Condition"]["StringEquals"]["AWS:SourceArn"]);
    assert_eq!(tag, "Sub");
    assert_eq!(
        source.as_str(),
        Some("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${VariantsDistribution}"),
        "scoped to this stack's distribution"
    );
}

#[test]
fn viewers_use_https_get_compressed_responses_and_security_headers() {
    let t = template();
    let config = distribution(&t);
    let behaviour = &config["DefaultCacheBehavior"];
    assert_eq!(behaviour["ViewerProtocolPolicy"], "redirect-to-https");
    assert_eq!(behaviour["Compress"], true);
    let methods: Vec<&str> = behaviour["AllowedMethods"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(methods, ["GET", "HEAD"]);
    assert!(
        config["CacheBehaviors"].is_null(),
        "one behaviour for every path"
    );
    assert_eq!(
        config["ViewerCertificate"]["CloudFrontDefaultCertificate"],
        true
    );
    assert_eq!(
        reference(&behaviour["ResponseHeadersPolicyId"]),
        "Ref VariantsSecurityHeaders"
    );
    let headers = &resource(&t, "VariantsSecurityHeaders")["Properties"]
        ["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"];
    let hsts = &headers["StrictTransportSecurity"];
    assert!(
        hsts["AccessControlMaxAgeSec"].as_u64().unwrap() >= 31_536_000,
        "a year or more"
    );
    assert_eq!(hsts["IncludeSubdomains"], true);
    assert_eq!(headers["FrameOptions"]["FrameOption"], "DENY");
    assert_eq!(
        headers["ReferrerPolicy"]["ReferrerPolicy"],
        "strict-origin-when-cross-origin"
    );
    for header in [
        "StrictTransportSecurity",
        "ContentTypeOptions",
        "FrameOptions",
        "ReferrerPolicy",
    ] {
        assert_eq!(
            headers[header]["Override"], true,
            "{header}: set on every response"
        );
    }
    // The same JPEG URL answers AVIF, WebP or JPEG by Accept: a shared cache downstream must key
    // on it, and on Accept-Encoding for the compressed manifests.
    let custom = &resource(&t, "VariantsSecurityHeaders")["Properties"]
        ["ResponseHeadersPolicyConfig"]["CustomHeadersConfig"]["Items"];
    let vary = custom
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|h| h["Header"].as_str().map(str::to_ascii_lowercase) == Some("vary".into()))
        .unwrap_or_else(|| panic!("no Vary header in the response headers policy: {custom:?}"));
    let named: Vec<String> = vary["Value"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    for header in ["accept", "accept-encoding"] {
        assert!(
            named.iter().any(|v| v == header),
            "Vary {named:?} lacks {header}"
        );
    }
    assert_eq!(vary["Override"], true, "set whatever the origin says");
    let (tag, output) = tagged(&t["Outputs"]["VariantsDomainName"]["Value"]);
    assert_eq!(
        (tag.as_str(), output.as_str()),
        ("GetAtt", Some("VariantsDistribution.DomainName"))
    );
}

#[test]
fn the_cache_key_holds_the_format_through_the_uri_and_ttls_honour_no_cache() {
    let t = template();
    let config = distribution(&t);
    assert_eq!(
        reference(&config["DefaultCacheBehavior"]["CachePolicyId"]),
        "Ref VariantsCachePolicy"
    );
    let policy = &resource(&t, "VariantsCachePolicy")["Properties"]["CachePolicyConfig"];
    let key = &policy["ParametersInCacheKeyAndForwardedToOrigin"];
    // No header in the key (no Accept): the edge function has put the chosen format in the URI.
    assert_eq!(key["HeadersConfig"]["HeaderBehavior"], "none");
    assert_eq!(key["CookiesConfig"]["CookieBehavior"], "none");
    assert_eq!(key["QueryStringsConfig"]["QueryStringBehavior"], "none");
    assert_eq!(key["EnableAcceptEncodingBrotli"], true);
    assert_eq!(key["EnableAcceptEncodingGzip"], true);
    // A re-upload rewrites the same keys and variants say `no-cache`: CloudFront honours that only
    // with a minimum TTL of 0, and an object without the header must not be kept unchecked either.
    let default = image_compressor::config::DEFAULT_CACHE_CONTROL;
    assert!(default.contains("no-cache"), "{default}");
    let function_env =
        &resource(&t, "ImageCompressorFunction")["Properties"]["Environment"]["Variables"];
    assert!(
        function_env["CACHE_CONTROL"].is_null(),
        "the stack keeps the default {default:?}"
    );
    assert_eq!(policy["MinTTL"], 0);
    assert_eq!(policy["DefaultTTL"], 0);
    // Nor is a missing object remembered past its write.
    let errors = config["CustomErrorResponses"].as_sequence().unwrap();
    for code in [403, 404] {
        let response = errors
            .iter()
            .find(|e| e["ErrorCode"] == code)
            .unwrap_or_else(|| panic!("no CustomErrorResponses entry for {code}"));
        assert_eq!(response["ErrorCachingMinTTL"], 0, "{code}");
    }
}

#[test]
fn the_edge_function_is_the_tested_file_and_the_formats_are_the_functions_setting() {
    let t = template();
    let function = &resource(&t, "SelectFormatFunction")["Properties"];
    assert_eq!(function["FunctionConfig"]["Runtime"], "cloudfront-js-2.0");
    assert_eq!(function["AutoPublish"], true);
    // The code as it is: which formats a variant has comes with its URL (the manifest's), so the
    // function needs no setting from the stack.
    let code = function["FunctionCode"]
        .as_str()
        .expect("FunctionCode is the file's text, with no substitution");
    let file = std::fs::read_to_string(
        workspace_root().join("functions/image-compressor/edge/select-format.js"),
    )
    .unwrap();
    assert!(
        code == file,
        "template.yaml's SelectFormatFunction code differs from functions/image-compressor/edge/select-format.js: copy the file into the template"
    );
    // The function's formats and qualities are the stack's parameters, whose defaults are the
    // function's own (checked at cold start: an empty quality is the measured default).
    let function_env =
        &resource(&t, "ImageCompressorFunction")["Properties"]["Environment"]["Variables"];
    for (variable, parameter) in [
        ("FORMATS", "Formats"),
        ("WEBP_QUALITY", "WebpQuality"),
        ("AVIF_QUALITY", "AvifQuality"),
    ] {
        assert_eq!(
            reference(&function_env[variable]),
            format!("Ref {parameter}"),
            "{variable}"
        );
    }
    assert_eq!(
        t["Parameters"]["Formats"]["Default"],
        image_compressor::config::DEFAULT_FORMATS
    );
    assert_eq!(t["Parameters"]["WebpQuality"]["Default"], "");
    assert_eq!(t["Parameters"]["AvifQuality"]["Default"], "");

    let associations = distribution(&t)["DefaultCacheBehavior"]["FunctionAssociations"]
        .as_sequence()
        .unwrap();
    assert_eq!(associations.len(), 1);
    assert_eq!(associations[0]["EventType"], "viewer-request");
    assert_eq!(
        reference(&associations[0]["FunctionARN"]),
        "GetAtt SelectFormatFunction.FunctionMetadata.FunctionARN"
    );
}
