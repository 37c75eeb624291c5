mod support;

use scrc::domain::{Language, Status};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some((judge, _)) = judge(&[]).await else { return };
    let script = script(
        Language::C,
        "#include <stdio.h>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);return 0;}",
        &[("2 3\n", "5\n"), ("10 20\n", "30\n")],
    );
    let started = std::time::Instant::now();
    let report = judged(&judge, &script).await;
    eprintln!("{:#?}\n took {:?}", report, started.elapsed());
    assert_eq!(report.status, Status::Ok);
}
