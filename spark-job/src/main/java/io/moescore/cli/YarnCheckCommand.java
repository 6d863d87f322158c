package io.moescore.cli;

import io.moescore.spark.yarn.YarnSetupCheck;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

/**
 * {@code moescore yarn-check [SPARK-SUBMIT OPTIONS]}: whether the YARN cluster of the client configuration on the
 * classpath (HADOOP_CONF_DIR) can take a submission with these options ({@link YarnSetupCheck}). submit-scripts/moescore
 * runs it before every {@code --master yarn} submission with the options it is about to pass. Exit 0 when it can
 * (one line about the cluster on stderr), 2 with one {@code moescore: } line per problem.
 */
@Command(name = "yarn-check", mixinStandardHelpOptions = true,
        description = "Checks that the YARN cluster of HADOOP_CONF_DIR has the queue and the GPU resource that these "
                + "spark-submit options ask for (--queue, --conf spark.executor.resource.gpu.amount=N, "
                + "--properties-file; spark-defaults.conf of SPARK_CONF_DIR or SPARK_HOME).")
final class YarnCheckCommand implements Callable<Integer> {
    @Unmatched
    List<String> sparkSubmitOptions = new ArrayList<>();

    @Override
    public Integer call() {
        YarnSetupCheck.Submission submission;
        try {
            submission = YarnSetupCheck.Submission.parse(sparkSubmitOptions, System.getenv());
            submission.executorGpus();
        } catch (RuntimeException e) {
            System.err.println("moescore: " + e.getMessage());
            return 2;
        }
        YarnSetupCheck.Result result = YarnSetupCheck.check(new Configuration(), submission);
        if (result.ok()) {
            System.err.println("moescore: " + result.cluster());
            return 0;
        }
        result.problems().forEach(p -> System.err.println("moescore: " + p));
        return 2;
    }
}
