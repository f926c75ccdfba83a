/*
 * proxy/loop: timers fire in deadline order and not before, cancel and re-arm work on a heap
 * of many timers, reaps run after dispatch, a watch with no interest is out of the epoll set
 * (a hung-up socket does not wake the loop), and loop_post runs work from another thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/loop.h"
#include "tap.h"

#define N_TIMERS 500

struct tick {
        struct loop_timer t;
        int id;
};

static int fired[N_TIMERS], n_fired;
static uint64_t fired_at[N_TIMERS];

static void tick_cb(struct loop *l, struct loop_timer *t)
{
        struct tick *k = container_of(t, struct tick, t);

        fired_at[n_fired] = loop_now_ms(l);
        fired[n_fired++] = k->id;
        if (n_fired == N_TIMERS - 50)
                loop_stop(l);
}

static void test_timer_order(void)
{
        struct loop *l;
        struct tick *ticks = calloc(N_TIMERS, sizeof(*ticks));
        uint64_t start;
        bool ordered = true, on_time = true, cancelled_absent = true;

        tap_ok(loop_new(&l) == 0, "a loop is created");
        start = loop_now_ms(l);
        /* Deadlines spread over 0..49 ms in a scrambled order; the last 50 are cancelled. */
        for (int i = 0; i < N_TIMERS; i++) {
                ticks[i].id = i;
                ticks[i].t = (struct loop_timer)LOOP_TIMER_NULL;
                loop_timer_arm(l, &ticks[i].t, (uint64_t)((i * 37) % 50), tick_cb);
        }
        for (int i = N_TIMERS - 50; i < N_TIMERS; i++)
                loop_timer_cancel(l, &ticks[i].t);
        /* Re-arming moves a timer: timer 0 (delay 0) goes to the back. */
        loop_timer_arm(l, &ticks[0].t, 60, tick_cb);
        loop_run(l);
        for (int i = 1; i < n_fired; i++) {
                int a = fired[i - 1], b = fired[i];
                uint64_t da = a == 0 ? 60 : (uint64_t)((a * 37) % 50), db = b == 0 ? 60 : (uint64_t)((b * 37) % 50);
                if (da > db)
                        ordered = false;
        }
        for (int i = 0; i < n_fired; i++) {
                int id = fired[i];
                uint64_t d = id == 0 ? 60 : (uint64_t)((id * 37) % 50);
                if (fired_at[i] < start + d)
                        on_time = false;
                if (id >= N_TIMERS - 50)
                        cancelled_absent = false;
        }
        tap_ok(n_fired == N_TIMERS - 50, "every armed timer fired once (%d)", n_fired);
        tap_ok(ordered, "timers fire in deadline order, a re-armed one at its new deadline");
        tap_ok(on_time, "no timer fires before its deadline");
        tap_ok(cancelled_absent, "cancelled timers never fire");
        tap_ok(fired[n_fired - 1] == 0, "the re-armed timer fired last");
        loop_free(l);
        free(ticks);
}

static int reaped;
static bool reaped_during_dispatch;
static bool in_dispatch;

static void reap_cb(void *data)
{
        reaped_during_dispatch |= in_dispatch;
        reaped++;
}

static void watch_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        char c;

        in_dispatch = true;
        if (read(w->fd, &c, 1) == 1)
                loop_reap_later(l, reap_cb, NULL);
        loop_watch_set(l, w, 0);
        in_dispatch = false;
        loop_stop(l);
}

static int hup_wakeups;

static void hup_cb(struct loop *l, struct loop_watch *w, uint32_t revents)
{
        hup_wakeups++;
}

static void stop_cb(struct loop *l, struct loop_timer *t)
{
        loop_stop(l);
}

static void test_watch_reap_park(void)
{
        struct loop *l;
        struct loop_watch w = LOOP_WATCH_NULL, h = LOOP_WATCH_NULL;
        struct loop_timer stop = LOOP_TIMER_NULL;
        int sp[2], hp[2];

        loop_new(&l);
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp);
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, hp);
        loop_watch_add(l, &w, sp[0], EPOLLIN, watch_cb);
        if (write(sp[1], "x", 1) != 1)
                abort();
        loop_run(l);
        tap_ok(reaped == 1 && !reaped_during_dispatch, "a reap queued in a callback runs after the dispatch round");

        /* A hung-up socket with no interest must not wake the loop. */
        loop_watch_add(l, &h, hp[0], 0, hup_cb);
        close(hp[1]);
        loop_timer_arm(l, &stop, 50, stop_cb);
        loop_run(l);
        tap_ok(hup_wakeups == 0, "a hung-up socket with no interest does not wake the loop (%d wake-ups)", hup_wakeups);
        loop_watch_set(l, &h, EPOLLIN);
        loop_timer_arm(l, &stop, 50, stop_cb);
        loop_run(l);
        tap_ok(hup_wakeups > 0, "once it wants input again, the hang-up is reported");
        loop_watch_del(l, &h);
        loop_watch_del(l, &w);
        close(sp[0]);
        close(sp[1]);
        close(hp[0]);
        loop_free(l);
}

static pthread_t main_thread;
static bool posted_on_loop_thread;

static void posted_cb(void *data)
{
        struct loop *l = data;

        posted_on_loop_thread = pthread_equal(pthread_self(), main_thread);
        loop_stop(l);
}

static void *poster(void *data)
{
        usleep(20000);
        loop_post(data, posted_cb, data);
        return NULL;
}

static void test_post(void)
{
        struct loop *l;
        pthread_t t;

        loop_new(&l);
        main_thread = pthread_self();
        pthread_create(&t, NULL, poster, l);
        loop_run(l);
        pthread_join(t, NULL);
        tap_ok(posted_on_loop_thread, "work posted from another thread runs on the loop's thread and can stop it");
        loop_free(l);
}

int main(void)
{
        test_timer_order();
        test_watch_reap_park();
        test_post();
        return tap_done();
}
