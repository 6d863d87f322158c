package io.moescore.job;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * An integration test (*IT): it runs the packaged launcher, so only failsafe runs it, after {@code package} (the
 * parent pom's failsafe configuration sets {@code moescore.integrationTest}). A surefire run whose {@code -Dtest}
 * pattern also matches it (e.g. {@code -Dtest='io.moescore.**'}) reports it skipped instead of running it against
 * whatever an earlier build left in target/.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@EnabledIfSystemProperty(named = "moescore.integrationTest", matches = "true",
        disabledReason = "an integration test: failsafe runs it after package (mvn verify)")
@interface IntegrationTest {
}
