"""Record scripted-expert demonstrations from the simulated arm, one bag per episode or one long
bag cut at the pauses between episodes.

    ros2 launch actjepa_ros record.launch.py
    ros2 service call /sim_node/reset std_srvs/srv/Trigger      # next episode (repeat)
    ros2 service call /recorder_node/stop std_srvs/srv/Trigger  # close the bag
    actjepa convert bags/ --config config/recorder.yaml --out demos.hdf5

sim_node (config/sim.yaml, overridden to expert mode: Meta-World's scripted expert drives the arm
and publishes its actions; an episode ends at success and the arm then idles until ~/reset) and
recorder_node (config/recorder.yaml; autostart: recording from launch) in one namespace. The
expert waits for the recorder's subscription, so the first episode is recorded from its start;
`actjepa convert` with the same config splits the bag at the idle pauses. With autostart:=false,
bracket each episode with /recorder_node/start and /recorder_node/stop instead (one bag each).
Without a ROS install, start the two nodes as
``python -m actjepa_ros.sim_node --ros-args --params-file config/sim.yaml -p expert:=true`` and
``python -m actjepa_ros.recorder_node --ros-args --params-file config/recorder.yaml``.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'actjepa_ros'
LOG_LEVEL = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]


def discovery_range_environment() -> list[SetEnvironmentVariable]:
    """Localhost-only discovery unless the discovery_range argument opens it (Iron and later
    read ROS_AUTOMATIC_DISCOVERY_RANGE, Humble ROS_LOCALHOST_ONLY)."""
    chosen = LaunchConfiguration('discovery_range')
    return [SetEnvironmentVariable('ROS_AUTOMATIC_DISCOVERY_RANGE', chosen),
            SetEnvironmentVariable('ROS_LOCALHOST_ONLY', PythonExpression(
                ["'1' if '", chosen, "' == 'LOCALHOST' else '0'"]))]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([share, 'config',
                                                                  'recorder.yaml']),
                              description='recorder_node parameters (ROS params-file YAML; '
                                          'also holds the `actjepa convert` config).'),
        DeclareLaunchArgument('sim_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'sim.yaml']),
                              description='sim_node parameters (ROS params-file YAML).'),
        DeclareLaunchArgument('output_dir', default_value='bags',
                              description='Folder the bags are written into.'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Record from launch; false: wait for '
                                          '/recorder_node/start.'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level of the node(s): debug, info, warn, error '
                                          'or fatal.'),
        DeclareLaunchArgument('discovery_range', default_value='LOCALHOST',
                              choices=['LOCALHOST', 'SUBNET', 'OFF', 'SYSTEM_DEFAULT'],
                              description='ROS_AUTOMATIC_DISCOVERY_RANGE of the node(s): '
                                          'LOCALHOST (default) keeps other hosts from '
                                          'discovering them; SUBNET opens them to the network '
                                          '(docs/SECURITY.md).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for both nodes and their relative topics.'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description="true: stamp received messages with the simulator's "
                                          '/clock instead of the wall clock.'),
    ]
    namespace = LaunchConfiguration('namespace')
    use_sim_time = ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)
    sim = Node(package=PACKAGE, executable='sim_node', name='sim_node', namespace=namespace,
               output='screen', arguments=LOG_LEVEL,
               parameters=[LaunchConfiguration('sim_params_file'),
                           {'expert': True, 'end_on_success': True, 'auto_reset': False}])
    recorder = Node(
        package=PACKAGE, executable='recorder_node', name='recorder_node', namespace=namespace,
        output='screen', arguments=LOG_LEVEL,
        parameters=[
            LaunchConfiguration('params_file'),
            {'output_dir': ParameterValue(LaunchConfiguration('output_dir'), value_type=str),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool),
             'use_sim_time': use_sim_time},
        ])
    return LaunchDescription([*arguments, *discovery_range_environment(), sim, recorder])
