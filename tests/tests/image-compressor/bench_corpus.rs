//! The benchmark's upload corpus (`bench/corpus/`) keeps each file's source and licence, and is
//! as broad as the benchmark says: at least 50 uploads with the function's test photos.

use integration_tests::workspace_root;

#[test]
fn every_corpus_file_has_its_source_and_licence() {
    let dir = workspace_root().join("bench/corpus");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "SOURCES.md" {
            continue;
        }
        files += 1;
        assert!(
            sources.contains(&name),
            "bench/corpus/{name} is not in bench/corpus/SOURCES.md"
        );
    }
    let photos =
        std::fs::read_dir(workspace_root().join("functions/image-compressor/testdata/good"))
            .unwrap()
            .count();
    assert!(
        files + photos >= 50,
        "{files} corpus files and {photos} test photos"
    );
}
